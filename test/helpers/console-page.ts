/**
 * The web console in a Chromium page: signing in, and what the stream previews decoded. The
 * console tests save their screenshots in CONSOLE_OUTPUT.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';

/** test-output/console/ of this checkout, or $KILN_TEST_OUTPUT/console/. */
export const CONSOLE_OUTPUT = join(process.env.KILN_TEST_OUTPUT ?? join(import.meta.dirname, '..', '..', 'test-output'), 'console');

/** Opens `url` (the console or one of its views) and signs in; resolves once the console shows. */
export async function signInToConsole(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console' }).waitFor();
}

/** Frames the preview `<video>` of `stream` (`app/name`) has decoded, and its width. */
export function previewFrames(page: Page, stream: string): Promise<{ frames: number; width: number }> {
  return page.evaluate((s) => {
    const v = document.querySelector<HTMLVideoElement>(`video[data-stream="${s}"]`);
    return v ? { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth } : { frames: 0, width: 0 };
  }, stream);
}
