// Starts the fold thread's TypeScript body (posting-fold-worker.ts) through tsx, whatever the parent's flags.
import { register } from 'tsx/esm/api';

register();
await import('./posting-fold-worker.ts');
