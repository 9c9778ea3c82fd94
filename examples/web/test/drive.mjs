// The browser test's driver: opens the route_guide page in headless Chromium (playwright-core
// with the given executable), lets it run its calls (`auto=1`), and prints what the page shows
// as one JSON line for tests/grpc_web_browser.rs to check.
//
// usage: node drive.mjs CHROMIUM URL...

import { chromium } from "playwright-core";

const [executablePath, ...urls] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, headless: true, timeout: 30000 });
try {
  const results = [];
  for (const url of urls) {
    const page = await browser.newPage();
    const console_ = [];
    page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
    await page.goto(url, { timeout: 30000 });
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "done", null, {
      timeout: 30000,
    });
    const shown = await page.evaluate(() => ({
      feature: document.getElementById("feature").textContent,
      count: document.getElementById("count").textContent,
      features: [...document.querySelectorAll("#features li")].map((li) => li.textContent),
      error: document.getElementById("error").textContent,
    }));
    results.push({ url, ...shown, console: console_ });
    await page.close();
  }
  console.log(JSON.stringify(results));
} finally {
  await browser.close();
}
