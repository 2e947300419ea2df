// The README's MLflow screenshots, as a fresh browser (empty localStorage) shows them:
//   npm install playwright-core && apt-get install chromium
//   NODE_PATH=$(npm root) node screenshots.js http://127.0.0.1:5000 EXPERIMENT_ID STAGE_RUN_ID OUT_DIR
// runs.png: the training runs (the README's URL), the pipeline run opened to show its stage runs.
// candidates-chart.png: the chart view filtered to one stage's candidates (its nested runs), the stage opened.
// Both close the MLflow Assistant panel, which a fresh browser opens, to leave room for the runs.
const { chromium } = require('playwright-core');
const [, , base, experiment, stageRun, out] = process.argv;
const EXPAND = 'button[data-component-id$="runnamecellrenderer.tsx_46"]';
const ASSISTANT_CLOSE = 'button[data-component-id="mlflow.assistant.chat_panel.close"]';

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  async function shoot(url, file) {
    const page = await (await browser.newContext({ viewport: { width: 1440, height: 860 } })).newPage();
    await page.goto(url);
    await page.waitForSelector(EXPAND, { timeout: 30000 });
    const close = await page.$(ASSISTANT_CLOSE);
    if (close) await close.click();
    await page.click(EXPAND);
    await page.waitForTimeout(3000);
    await page.screenshot({ path: `${out}/${file}` });
  }
  const runs = `${base}/#/experiments/${experiment}/runs?workflowType=machine_learning`;
  await shoot(runs, 'runs.png');
  const filter = encodeURIComponent(`tags.mlflow.parentRunId = '${stageRun}'`);
  await shoot(`${runs}&compareRunsMode=CHART&searchFilter=${filter}`, 'candidates-chart.png');
  await browser.close();
})();
