/**
 * A jest reporter that fails the run under PADDOCK_CI=1 when any test was skipped,
 * left todo, or never ran (test.skip, test.todo, xit, a `.only` elsewhere in its file, a
 * whole skipped file): CI must not go green on checks it did not make (issue 19). By
 * hand it is silent; jest's own summary counts the skips. Plain JS: jest loads
 * reporters without transforming them.
 */
class NoSkipsReporter {
  constructor() {
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    if (process.env.PADDOCK_CI !== '1') return;
    const notRun = [];
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status !== 'passed' && t.status !== 'failed') notRun.push(`${t.status}: ${file.testFilePath} › ${t.fullName}`);
      }
      if (file.skipped && file.testResults.length === 0) notRun.push(`skipped file: ${file.testFilePath}`);
    }
    const counted = results.numPendingTests + results.numTodoTests + results.numPendingTestSuites;
    if (notRun.length === 0 && counted === 0) return;
    const msg =
      `PADDOCK_CI=1: ${results.numPendingTests} skipped and ${results.numTodoTests} todo tests, ` +
      `${results.numPendingTestSuites} skipped files; CI runs every test or fails:\n  ${notRun.join('\n  ')}`;
    // eslint-disable-next-line no-console
    console.error(msg);
    this.error = new Error(msg);
  }

  getLastError() {
    return this.error;
  }
}

module.exports = NoSkipsReporter;
