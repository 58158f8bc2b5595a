// metav1.Status failures as kube-apiserver writes them (apimachinery pkg/api/errors).
import type { ResourceType } from './resources.ts';

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details?: object;
  constructor(code: number, reason: string, message: string, details?: object) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }
  status(): object {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details ? { details: this.details } : {}), code: this.code };
  }
}

const qualified = (t: ResourceType): string => (t.group ? `${t.plural}.${t.group}` : t.plural);
const details = (t: ResourceType, name: string): object => ({ name, group: t.group || undefined, kind: t.plural });

export const notFound = (t: ResourceType, name: string): ApiError => new ApiError(404, 'NotFound', `${qualified(t)} "${name}" not found`, details(t, name));
export const alreadyExists = (t: ResourceType, name: string): ApiError => new ApiError(409, 'AlreadyExists', `${qualified(t)} "${name}" already exists`, details(t, name));
export const conflict = (t: ResourceType, name: string): ApiError =>
  new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(t)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, details(t, name));
export const badRequest = (message: string): ApiError => new ApiError(400, 'BadRequest', message);
export const invalid = (t: ResourceType, name: string, message: string): ApiError =>
  new ApiError(422, 'Invalid', `${t.kind} "${name}" is invalid: ${message}`, { ...details(t, name), kind: t.kind });
export const expired = (message: string): ApiError => new ApiError(410, 'Expired', message);
export const unauthorized = (): ApiError => new ApiError(401, 'Unauthorized', 'Unauthorized');
export const genericNotFound = (): ApiError => new ApiError(404, 'NotFound', 'the server could not find the requested resource');
