export * from './docker-driver';
export { DockerodeDriver, type DockerodeDriverOptions } from './dockerode-driver';
export { mapDockerError, classifyStreamError } from './docker-errors';
export { Semaphore } from './semaphore';
export { parseImageRef, type ImageRef } from './validation';
