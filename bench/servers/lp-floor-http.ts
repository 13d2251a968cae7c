/** The long-polling floor on Node's HTTP server alone (./lp-floor.ts). */
import { serveLpFloor } from './lp-floor.js'

await serveLpFloor('http')
