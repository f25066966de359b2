// The HTTP API: JSON, session cookie, CSRF header on changes, errors as {code, message}.
import { currentLanguage, hasText, t } from "./i18n.js";

let csrfToken = null;

// A refusal's words in the page's language: the catalogue's for a known code ("apierror.<code>"); else the
// server's message when it is in both languages ("English / Tiếng Việt": the half in the page's language);
// else, in English, the server's own message; never the server's English in the Vietnamese page.
export function errorText(code, serverMessage) {
  if (hasText(`apierror.${code}`)) return t(`apierror.${code}`);
  const message = String(serverMessage ?? "");
  const halves = message.split(" / ");
  if (halves.length === 2) {
    const vietnamese = halves.findIndex((half) => VIETNAMESE.test(half));
    if (vietnamese >= 0) return halves[currentLanguage() === "vi" ? vietnamese : 1 - vietnamese];
  }
  if (currentLanguage() === "en" && message) return message;
  return VIETNAMESE.test(message) ? message : t("error.generic");
}
// Letters only Vietnamese writes (Latin letters with its diacritics): a message with them is Vietnamese.
const VIETNAMESE = /[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]/i;

export class ApiError extends Error {
  constructor(status, code, message, headers, details) {
    super(errorText(code, message)); // what a page shows: in the page's language
    this.status = status;
    this.code = code;
    this.serverMessage = message; // the server's own words (English, or English / Vietnamese)
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
