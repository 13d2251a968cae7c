import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

// The closed network refuses Chromium's own background connections (updates,
// sync, QUIC probes), so they are turned off. playwright-core gives every
// launch a fresh temporary profile and removes it on close.
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/** Launches Debian's Chromium; a missing browser fails the caller, it never skips. */
export async function launchChromium (timeout: number): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}. Install Debian's chromium package ` +
      '(apt-get install -y chromium) or set CHROMIUM_PATH. This test must not be skipped.')
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout })
}
