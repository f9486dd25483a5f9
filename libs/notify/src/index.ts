export * from './errors.ts';
export * from './channel-url.ts';
export * from './redact.ts';
export * from './notification.ts';
export * from './deliver.ts';
