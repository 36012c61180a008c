// Opens the stream page in Debian's headless chromium, lets it play, and prints what the page
// shows as JSON; saves a screenshot at 1280x800 and one 390 wide (a phone), next to it.
// Usage: node page.js URL SCREENSHOT.png SECONDS [SAMPLE_MS]
const { chromium } = require('playwright-core');

(async () => {
  const [url, shot, seconds, sampleMs] = process.argv.slice(2);
  const every = Number(sampleMs || 1000);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // This machine's network is closed: keep chromium from reaching out (the tests).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(url);
    const times = [], samples = [];
    const started = Date.now();
    for (let i = 0; i < Number(seconds || 10) * 1000 / every; i++) {
      await page.waitForTimeout(every);
      const s = await page.evaluate(() => {
        const p = document.getElementById('player');
        return { ct: p.currentTime, w: p.videoWidth || 0, paused: p.paused };
      });
      samples.push({ t: (Date.now() - started) / 1000, ...s });
      if (i % Math.max(1, Math.round(1000 / every)) === Math.max(1, Math.round(1000 / every)) - 1) times.push(s.ct);
    }
    const shown = await page.evaluate(() => {
      const text = id => document.getElementById(id).textContent;
      const player = document.getElementById('player');
      return {
        paused: player.paused,
        error: player.error ? player.error.message : null,
        now: text('now'),
        next: [...document.querySelectorAll('#next li')].map(li => li.textContent),
        peers: text('peers'),
        fromOrigin: document.getElementById('from_origin').dataset.bytes,
        fromPeers: document.getElementById('from_peers').dataset.bytes,
        shownOrigin: text('from_origin'),
        held: text('held'),
      };
    });
    await page.screenshot({ path: shot });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(2500);
    await page.screenshot({ path: shot.replace(/\.png$/, '-narrow.png'), fullPage: true });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    console.log(JSON.stringify({ times, samples, narrow, ...shown }));
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
