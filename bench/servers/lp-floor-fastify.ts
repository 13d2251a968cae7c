/** The long-polling floor on Fastify routes (./lp-floor.ts). */
import { serveLpFloor } from './lp-floor.js'

await serveLpFloor('fastify')
