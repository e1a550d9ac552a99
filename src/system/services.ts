// The daemon's parts as BaluHost's services panel shows them (GET /api/admin/services, BaluDesk polls it every 30 s):
// one row per part with a state a person can act on.
import type { SyncStatus } from '../sync/runtime.ts';

export interface ServiceState {
  name: string;
  display_name: string;
  /** running: working; stopped: not configured here; degraded: configured but not reaching what it serves. */
  state: 'running' | 'stopped' | 'degraded';
  detail: string | null;
}

export interface ServiceSources {
  sync: { status(): Promise<SyncStatus> };
  energy: { polling: boolean; registry: { list(): unknown[] } };
  /** null on a hub (no NAS presence there). */
  nas: { status(): { nas_state: string; reason: string } } | null;
}

export async function describeServices(src: ServiceSources): Promise<ServiceState[]> {
  const out: ServiceState[] = [{ name: 'balupi-api', display_name: 'BaluPi API', state: 'running', detail: null }];
  const sync = await src.sync.status();
  if (sync.role === 'hub') {
    out.push({ name: 'balupi-sync', display_name: 'Sync hub', state: 'running', detail: `${sync.peers.length} peer(s) seen` });
  } else if (!sync.hub) {
    out.push({ name: 'balupi-sync', display_name: 'Sync with the NAS', state: 'stopped', detail: 'BALUPI_HUB_URL is not set' });
  } else {
    const c = sync.hub.connection;
    out.push({
      name: 'balupi-sync',
      display_name: 'Sync with the NAS',
      state: c === 'connected' ? 'running' : 'degraded',
      detail: c === 'connected' ? `${sync.queue.pending + sync.queue.failed} change(s) queued` : `${c}${sync.hub.lastError ? `: ${sync.hub.lastError}` : ''}`,
    });
  }
  const plugs = src.energy.registry.list().length;
  out.push({
    name: 'balupi-energy',
    display_name: 'Energy monitor',
    state: src.energy.polling ? 'running' : 'stopped',
    detail: src.energy.polling ? `${plugs} plug(s)` : 'no Tapo credentials configured',
  });
  if (src.nas) {
    const n = src.nas.status();
    out.push({ name: 'balupi-nas', display_name: 'NAS presence', state: 'running', detail: `NAS ${n.nas_state}: ${n.reason}` });
  }
  return out;
}
