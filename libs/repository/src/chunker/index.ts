export {
  CHUNKER_AVERAGE_BITS,
  CHUNKER_MAX_SIZE,
  CHUNKER_MIN_SIZE,
  CHUNKER_WINDOW_SIZE,
  chunkBoundaries,
  Chunker,
  chunkStream,
  type Chunk,
  type ChunkBoundary,
  type ChunkerOptions,
} from './chunker.ts';
export {
  CHUNKER_POLYNOMIAL_DEGREE,
  formatChunkerPolynomial,
  isIrreducible,
  parseChunkerPolynomial,
  polDegree,
  polDivMod,
  polGcd,
  polMod,
  polMul,
  polMulMod,
  randomIrreduciblePolynomial,
  type Pol,
} from './polynomial.ts';
export {
  ChunkPool,
  ChunkPoolError,
  ChunkPoolErrorCode,
  type ChunkCacheInput,
  type ChunkPoolOptions,
  type FileChunk,
  type PreviousChunk,
  type ReusedChunk,
} from './chunk-pool.ts';
export { fastDigest } from './fast-digest.ts';
