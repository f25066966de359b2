// The HTTP API: JSON, session cookie, CSRF header on changes, errors as {code, message}.
let csrfToken = null;

export class ApiError extends Error {
  constructor(status, code, message, headers, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.details = details || {}; // e.g. {reason} of a weak_password
  }
}

export function setCsrf(token) {
  csrfToken = token;
}

export async function api(method, path, body) {
  const headers = {};
  const options = { method, headers, credentials: "same-origin" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken || "";
  // FormData, or a file sent as the raw body (Content-Type from the file: an image, an XLSX).
  if (body instanceof FormData || body instanceof Blob) options.body = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, options);
  } catch (error) {
    throw new ApiError(0, "network", error.message);
  }
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = data?.error || {};
    throw new ApiError(response.status, error.code || "http_error", error.message || response.statusText,
      response.headers, error.details);
  }
  return data;
}
