// The address and CIDR parser lives in router/cidr.ts (pure, shared with translation, so a range
// is judged valid by the same code that matches it). Re-exported here for the real-IP code.

export { CidrSet, cidrProblem, formatIpBytes, ipFamily, normalizeIp, normalizeNode, parseCidr, parseCidrList, type Cidr } from '../../router/cidr.ts';
