// Preloaded (--import) into a daemon process by a test: SIGUSR2 leaves a rejected promise unhandled, the way a defect
// in the daemon would. Fault injection from outside the daemon's code; nothing of the daemon is replaced.
process.on('SIGUSR2', () => {
  void Promise.reject(new Error('injected defect: a rejection nobody handles'));
});
