import { notSupported } from './unsupported';

export const run = notSupported('resume');
