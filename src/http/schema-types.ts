// The JSON-schema building blocks the route schemas share (they drive validation and fast serialization).
export const num = { type: 'number' } as const;
export const int = { type: 'integer' } as const;
export const str = { type: 'string' } as const;
export const bool = { type: 'boolean' } as const;
export const nNum = { type: ['number', 'null'] } as const;
export const nStr = { type: ['string', 'null'] } as const;
export const nBool = { type: ['boolean', 'null'] } as const;
