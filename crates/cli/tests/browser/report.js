// Opens a gateway's report page in Debian's headless chromium, waits for its data, and prints
// as JSON the data behind the charts (`window.reportData`), the table and the cards as drawn;
// saves a screenshot at 1280x900 and one 390 wide (a phone), next to it.
// Usage: node report.js URL SCREENSHOT.png
const { chromium } = require('playwright-core');

(async () => {
  const [url, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(url);
    await page.waitForFunction(() => window.reportData, null, { timeout: 15000 });
    const shown = await page.evaluate(() => ({
      data: window.reportData,
      cards: [...document.querySelectorAll('#cards .card')].map(c => c.textContent),
      rows: [...document.querySelectorAll('#entries tr')].slice(1)
        .map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)),
      drawn: ['listeners', 'bytes', 'silence'].map(id => document.getElementById(id).width),
    }));
    await page.screenshot({ path: shot, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(500);
    await page.screenshot({ path: shot.replace(/\.png$/, '-narrow.png'), fullPage: true });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    console.log(JSON.stringify({ narrow, ...shown }));
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
