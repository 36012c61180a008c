// Opens the stream page in Debian's headless chromium, lets it play, and prints what the page
// shows as JSON; saves a screenshot. Usage: node page.js URL SCREENSHOT.png SECONDS
const { chromium } = require('playwright-core');

(async () => {
  const [url, shot, seconds] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // This machine's network is closed: keep chromium from reaching out (the tests).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    const times = [];
    for (let i = 0; i < Number(seconds || 10); i++) {
      await page.waitForTimeout(1000);
      times.push(await page.evaluate(() => document.getElementById('player').currentTime));
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
        fromOrigin: text('from_origin'),
        fromPeers: text('from_peers'),
      };
    });
    await page.screenshot({ path: shot });
    console.log(JSON.stringify({ times, ...shown }));
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
