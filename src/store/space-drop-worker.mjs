// Starts the drop thread's TypeScript body (space-drop-worker.ts) through tsx, whatever the parent's flags.
import { register } from 'tsx/esm/api';

register();
await import('./space-drop-worker.ts');
