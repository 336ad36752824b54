import { startKiln } from './helpers/kiln-process.ts';
import { launchChromium, inboundStats, waitFor } from './helpers/browser.ts';
const kiln = await startKiln({ KILN_LOG_LEVEL: 'info' });
const { browser, close } = await launchChromium();
try {
  const pub = await browser.newPage();
  await pub.goto(`${kiln.signalingUrl}/publish.html?autostart=1&stream=s1&token=${kiln.password}`);
  await waitFor(() => pub.textContent('#status'), (s) => s === 'connection: connected', 10000);
  const play = await browser.newPage();
  await play.goto(`${kiln.signalingUrl}/play.html?autostart=1&stream=s1&session=v1`);
  await waitFor(() => inboundStats(play, 'kilnPlayer'), (s) => s.framesDecoded > 30, 15000);
  await play.evaluate(() => { const pc = (window as any).kilnPlayer; (window as any).log = []; const t0 = performance.now(); pc.addEventListener('connectionstatechange', () => (window as any).log.push([pc.connectionState, Math.round(performance.now() - t0)])); pc.addEventListener('iceconnectionstatechange', () => (window as any).log.push(['ice:' + pc.iceConnectionState, Math.round(performance.now() - t0)])); pc.getTransceivers()[0].receiver.transport.addEventListener('statechange', () => (window as any).log.push(['dtls:' + pc.getTransceivers()[0].receiver.transport.state, Math.round(performance.now() - t0)])); });
  const r = await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams/s1/sessions/v1`, { method: 'DELETE', headers: { authorization: kiln.basic } });
  console.log(r.status);
  await new Promise((r) => setTimeout(r, 12000));
  console.log(await play.evaluate(() => (window as any).log));
} finally {
  await close();
  await kiln.stop(); console.log(kiln.output().split("\n").filter(l => /closeNotify|rror/.test(l)).join("\n"));
}
