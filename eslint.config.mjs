// ESLint (make lint): the web client's JavaScript, plain ES modules served as they are (no bundler).
// The recommended rules catch undefined names, unused variables and unreachable code.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["web_client/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
  },
];
