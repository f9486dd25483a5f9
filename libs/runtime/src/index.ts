/**
 * The process around volback's code: environment parsing and a service's bootstrap; starting and
 * supervising child processes come from @volback/process, re-exported here. Services, `npm start`
 * and the images use it. This file is the library's only public entry point.
 */
export * from './env.ts';
export * from './service.ts';
export * from '@volback/process';
