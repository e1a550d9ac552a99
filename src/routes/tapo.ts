// /api/tapo/devices: the plugs — list, add, edit, remove, switch, discover. Reading is open to every user; changes
// need an admin token (one plug powers the NAS, and the list decides what is polled).

import type { FastifyPluginAsync } from 'fastify';
import type { EnergyMonitor } from '../energy/monitor.ts';
import type { DeviceRole } from '../energy/types.ts';
import { requireAdmin } from '../http/auth.ts';
import { currentDeviceJson, currentDeviceSchema, deviceJson, deviceSchema } from './energy-json.ts';

export interface TapoRoutesOptions {
  monitor: EnergyMonitor;
}

interface DeviceBody {
  host?: string;
  port?: number;
  name?: string | null;
  role?: DeviceRole;
  max_power_w?: number | null;
}

const idParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } } as const;
const deviceBodyProps = {
  host: { type: 'string', minLength: 1, maxLength: 300 },
  port: { type: 'integer', minimum: 1, maximum: 65535 },
  name: { type: ['string', 'null'], maxLength: 64 },
  role: { type: 'string', enum: ['nas', 'monitor', 'generic'] },
  max_power_w: { type: ['number', 'null'] },
} as const;

const patch = (b: DeviceBody) => ({
  ...(b.host !== undefined && { host: b.host }),
  ...(b.port !== undefined && { port: b.port }),
  ...(b.name !== undefined && { name: b.name }),
  ...(b.role !== undefined && { role: b.role }),
  ...(b.max_power_w !== undefined && { maxPowerW: b.max_power_w }),
});

export const tapoRoutes: FastifyPluginAsync<TapoRoutesOptions> = async (app, { monitor }) => {
  const latest = (id: number) => monitor.queries.current().devices.find((d) => d.device.id === id)?.reading ?? null;
  const one = { 200: deviceSchema };

  app.get('/api/tapo/devices', {
    schema: { response: { 200: { type: 'object', properties: { devices: { type: 'array', items: deviceSchema }, total: { type: 'integer' } } } } },
  }, async () => {
    const devices = monitor.queries.current().devices.map((d) => deviceJson(d.device, d.reading));
    return { devices, total: devices.length };
  });

  // host may carry the port ("192.168.1.20:8080", "[fd00::5]:80"); a separate port field overrides it.
  app.post<{ Body: DeviceBody & { host: string } }>('/api/tapo/devices', {
    preHandler: requireAdmin,
    schema: { body: { type: 'object', required: ['host'], properties: deviceBodyProps }, response: { 201: deviceSchema } },
  }, async (req, reply) => {
    const d = await monitor.addDevice({ ...patch(req.body), host: req.body.host });
    return reply.code(201).send(deviceJson(d, null));
  });

  app.put<{ Params: { id: number }; Body: DeviceBody }>('/api/tapo/devices/:id', {
    preHandler: requireAdmin,
    schema: { params: idParams, body: { type: 'object', properties: deviceBodyProps }, response: one },
  }, async (req) => {
    const d = await monitor.updateDevice(req.params.id, patch(req.body));
    return deviceJson(d, latest(d.id));
  });

  app.delete<{ Params: { id: number } }>('/api/tapo/devices/:id', {
    preHandler: requireAdmin,
    schema: { params: idParams, response: { 200: { type: 'object', properties: { message: { type: 'string' } } } } },
  }, async (req) => {
    const d = await monitor.removeDevice(req.params.id);
    return { message: `Device ${d.id} (${d.name}) removed; its history is kept` };
  });

  // Body optional: {"on": true|false} sets the relay; without it the relay is flipped (never off for the NAS plug).
  app.post<{ Params: { id: number }; Body: { on?: boolean } | undefined }>('/api/tapo/devices/:id/toggle', {
    preHandler: requireAdmin,
    schema: {
      params: idParams,
      body: { type: ['object', 'null'], properties: { on: { type: 'boolean' } } },
      response: {
        200: {
          type: 'object',
          properties: { device_id: { type: 'integer' }, success: { type: 'boolean' }, device_on: { type: 'boolean' }, new_state: { type: 'string' }, reading: { ...currentDeviceSchema, type: ['object', 'null'] } },
        },
      },
    },
  }, async (req) => {
    const r = await monitor.toggle(req.params.id, req.body?.on);
    return {
      device_id: r.device.id,
      success: true,
      device_on: r.on,
      new_state: r.on ? 'on' : 'off',
      reading: r.reading && currentDeviceJson({ device: r.device, reading: r.reading }),
    };
  });

  app.post('/api/tapo/devices/discover', {
    preHandler: requireAdmin,
    schema: {
      response: {
        200: {
          type: 'object',
          properties: {
            discovered: { type: 'integer' },
            new_devices: { type: 'integer' },
            updated_devices: { type: 'integer' },
            found: {
              type: 'array',
              items: { type: 'object', properties: { host: { type: 'string' }, port: { type: 'integer' }, mac: { type: ['string', 'null'] }, model: { type: ['string', 'null'] }, device_type: { type: 'string' }, encrypt_type: { type: ['string', 'null'] } } },
            },
            devices: { type: 'array', items: deviceSchema },
          },
        },
      },
    },
  }, async () => {
    const r = await monitor.discover();
    return {
      discovered: r.found.length,
      new_devices: r.added.length,
      updated_devices: r.updated.length,
      found: r.found.map((f) => ({ host: f.host, port: f.port, mac: f.mac, model: f.model, device_type: f.deviceType, encrypt_type: f.encryptType })),
      devices: [...r.added, ...r.updated].map((d) => deviceJson(d, null)),
    };
  });
};
