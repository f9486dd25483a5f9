export {
  FILE_TYPES,
  checkRange,
  isFileId,
  layoutPath,
  resolveRange,
  type Backend,
  type ByteRange,
  type FileHandle,
  type FileInfo,
  type FileType,
} from './backend.ts';
export { BACKEND_CONFIG_ERROR_CODE, BackendConfigError } from './backend-config-error.ts';
export { LocalBackend } from './local-backend.ts';
export { openBackend } from './open-backend.ts';
export {
  S3Backend,
  s3BackendFromEnv,
  type S3BackendOptions,
  type S3Credentials,
  type S3Environment,
} from './s3-backend.ts';
export { parseS3Location, type S3Location } from './s3-location.ts';
