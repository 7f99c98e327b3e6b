// Lint: eslint's and typescript-eslint's recommended rules, plus the house rule that only src/kube imports
// @kubernetes/client-node (kube/ is the only door to the API server).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", ".run/", "crds/", "charts/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/kube/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { paths: [{ name: "@kubernetes/client-node", message: "Only src/kube may talk to the API server." }] },
      ],
    },
  },
);
