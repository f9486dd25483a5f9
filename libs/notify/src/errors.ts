/** Stable codes of notification errors (in `NotificationFailed.code` and API problems). */
export const NotifyErrorCode = {
  /** The channel URL cannot be used (unknown scheme, missing token, bad parameter). */
  UrlInvalid: 'NOTIFY_URL_INVALID',
  /** The receiver answered with a status that is not success. */
  HttpStatus: 'NOTIFY_HTTP_STATUS',
  /** The receiver could not be reached, or did not answer in time. */
  Unreachable: 'NOTIFY_UNREACHABLE',
  /** The SMTP server refused the mail or the login. */
  SmtpRefused: 'NOTIFY_SMTP_REFUSED',
} as const;
/** One of {@link NotifyErrorCode}. */
export type NotifyErrorCode = (typeof NotifyErrorCode)[keyof typeof NotifyErrorCode];

/** A channel URL that cannot be used; the message never repeats the URL (it may hold credentials). */
export class NotifyUrlError extends Error {
  override readonly name = 'NotifyUrlError';
  readonly code = NotifyErrorCode.UrlInvalid;
}
