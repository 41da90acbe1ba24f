// ESLint flat config. Syntax-only (no type-aware rules) so `npm run lint` stays fast;
// `npm run typecheck` covers the type system.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * Every `eslint-disable*` directive must say why, after ` -- `:
 *   // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON from the wire, validated below
 */
const directiveNeedsReason = {
  meta: {
    type: 'suggestion',
    docs: { description: 'require a reason (`-- why`) on eslint-disable directives' },
    schema: [],
    messages: {
      missing:
        'Give a reason for this {{directive}} after " -- ", e.g. "// {{directive}} <rule> -- why".',
    },
  },
  create(context) {
    return {
      Program() {
        for (const comment of context.sourceCode.getAllComments()) {
          const text = comment.value.trim();
          const match = /^(eslint-disable(?:-next-line|-line)?|eslint-enable)\b/.exec(text);
          if (!match || match[1] === 'eslint-enable') continue;
          const reason = text.split(/\s--\s/)[1];
          if (!reason || reason.trim() === '') {
            context.report({
              loc: comment.loc,
              messageId: 'missing',
              data: { directive: match[1] },
            });
          }
        }
      },
    };
  },
};

export default defineConfig(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'coverage/',
      '.livepatch-cache/',
      'test/fixtures/**',
      'bench/fixtures/**',
      // Scratch builds of the loader for benchmarks (git-ignored).
      'bench/.build/',
      'bench/.ic/',
    ],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.{js,mjs,cjs,ts,mts,cts}'],
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'module',
      globals: { ...globals.node },
    },
    plugins: { livepatch: { rules: { 'directive-needs-reason': directiveNeedsReason } } },
    rules: {
      'livepatch/directive-needs-reason': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
);
