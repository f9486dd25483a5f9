export * from './polynomial.ts';
export * from './chunker.ts';
