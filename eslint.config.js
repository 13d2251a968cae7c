// Fastify's own style: neostandard (standard for flat config) with its TypeScript rules.
import neostandard from 'neostandard'
import globals from 'globals'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', '.tap/**', 'bench/results/**']
  }),
  {
    rules: {
      // `void promise` marks a promise left unawaited on purpose; only the expression form stays banned.
      'no-void': ['error', { allowAsStatement: true }],
      // `return this.x ??= make()` is our lazy getter; a logical assignment cannot be misread as a comparison.
      'no-return-assign': 'off'
    }
  },
  {
    // Scripts served to the browser (the example page and the hub explorer).
    files: ['example-app/public/**/*.js', 'lib/explorer/assets/**/*.js'],
    languageOptions: { globals: { ...globals.browser, signalR: 'readonly' } }
  },
  {
    files: ['types/**/*.ts'],
    rules: {
      // Type tests bind values only so that their types can be asserted.
      '@typescript-eslint/no-unused-vars': 'off'
    }
  }
]
