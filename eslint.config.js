// Lint: eslint's and typescript-eslint's recommended rules, plus the house rules: only src/kube imports
// @kubernetes/client-node (kube/ is the only door to the API server), and src/policy stays pure (it imports
// values only from itself, the API schemas and pure libraries; types from anywhere).
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
  {
    files: ["src/policy/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: [{ name: "@kubernetes/client-node", message: "Only src/kube may talk to the API server." }],
          patterns: [
            {
              group: ["../kube/*", "../runtime/*", "../controllers/*", "../engine/*", "../mediaagent/*", "../observability/*"],
              allowTypeImports: true,
              message: "src/policy is pure: import only types from the layers that do I/O.",
            },
            { group: ["node:fs*", "node:child_process", "node:net", "node:http*", "undici"], message: "src/policy does no I/O." },
          ],
        },
      ],
    },
  },
);
