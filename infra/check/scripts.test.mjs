// Tests for the deploy helpers: bash syntax, the Slack app manifest, and dry runs of
// deploy.sh and put-secrets.sh against a fake `aws` that records what it was asked to do.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import {
  mkdtempSync, mkdirSync, copyFileSync, writeFileSync, readFileSync, rmSync, chmodSync, existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
// yaml comes from infra/local's node_modules (make deps). The template's short tags (!Ref,
// !GetAtt, ...) stay unresolved: these tests read only plain values of it.
const YAML = createRequire(path.resolve(here, '../local/package.json'))('yaml');
function parseYaml(text) {
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('; '));
  return doc.toJS();
}
const infra = path.resolve(here, '..');
const SCRIPTS = ['deploy.sh', 'put-secrets.sh'];

// A fake AWS CLI: logs each call's arguments (one JSON line), copies `--value file://X`
// contents to values.log, and answers describe-stacks.
const FAKE_AWS = `#!/usr/bin/env bash
set -euo pipefail
log_dir="\${FAKE_AWS_LOG:?}"
printf '%s\\0' "$@" >>"$log_dir/args.bin"; printf '\\n' >>"$log_dir/args.bin"
prev=""
for a in "$@"; do
  if [[ "$prev" == --value && "$a" == file://* ]]; then
    f="\${a#file://}"
    { stat -c '%a' "$f" 2>/dev/null || stat -f '%Lp' "$f"; } >>"$log_dir/modes.log"
    cat "$f" >>"$log_dir/values.log"; printf '\\n' >>"$log_dir/values.log"
  fi
  prev="$a"
done
case "$1 \${2:-}" in
  "ssm put-parameter") echo 1 ;;
  "s3api head-object") exit 254 ;;
  "cloudformation describe-stacks")
    if [[ "$*" == *"OutputKey=='EventsUrl'"* ]]; then
      echo "https://abc123.execute-api.eu-west-1.amazonaws.com/slack/events"
    else
      printf 'EventsUrl\\thttps://abc123.execute-api.eu-west-1.amazonaws.com/slack/events\\n'
    fi ;;
esac
`;

let dir;
let bin;
let logs;

function calls() {
  const p = path.join(logs, 'args.bin');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter(Boolean).map((line) => line.split('\0').filter((x) => x !== ''));
}

function run(script, env) {
  rmSync(logs, { recursive: true, force: true });
  mkdirSync(logs);
  return spawnSync('bash', [path.join(dir, 'infra', script)], {
    cwd: tmpdir(),
    encoding: 'utf8',
    env: {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: dir,
      FAKE_AWS_LOG: logs,
      AWS_REGION: 'eu-west-1',
      DEPLOYER: 'aws',
      ...env,
    },
  });
}

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'slackrelay-scripts-'));
  mkdirSync(path.join(dir, 'infra'));
  mkdirSync(path.join(dir, 'build'));
  for (const f of [...SCRIPTS, 'template.yaml', 'slack-app-manifest.yaml']) {
    copyFileSync(path.join(infra, f), path.join(dir, 'infra', f));
  }
  writeFileSync(path.join(dir, 'build', 'receiver.zip'), 'receiver zip');
  writeFileSync(path.join(dir, 'build', 'worker.zip'), 'worker zip');
  bin = path.join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'aws'), FAKE_AWS);
  chmodSync(path.join(bin, 'aws'), 0o755);
  logs = path.join(dir, 'logs');
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('shell scripts', () => {
  for (const s of SCRIPTS) {
    test(`bash -n ${s}`, () => {
      const r = spawnSync('bash', ['-n', path.join(infra, s)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(readFileSync(path.join(infra, s), 'utf8'), /^#!\/usr\/bin\/env bash\n[\s\S]*set -euo pipefail/);
    });
  }

  test('deploy.sh DRY_RUN prints the plan with content-hash keys and changes nothing', () => {
    const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /stack +slackrelay in eu-west-1/);
    assert.match(r.stdout, /s3:\/\/bkt\/slackrelay\/receiver-[0-9a-f]{64}\.zip/);
    assert.match(r.stdout, /WorkerZipKey=slackrelay\/worker-[0-9a-f]{64}\.zip/);
    assert.match(r.stdout, /ReceiverReservedConcurrency=\n/);
    assert.deepEqual(calls(), []);
  });

  test('deploy.sh refuses a reserved concurrency the template would reject', () => {
    for (const bad of ['-1', '007', 'ten']) {
      const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1', RECEIVER_RESERVED_CONCURRENCY: bad });
      assert.notEqual(r.status, 0, `RECEIVER_RESERVED_CONCURRENCY=${bad}: got exit 0`);
      assert.match(r.stderr, /RECEIVER_RESERVED_CONCURRENCY/);
    }
  });

  test('deploy.sh takes exactly the worker timeouts the template allows', () => {
    const tpl = parseYaml(readFileSync(path.join(infra, 'template.yaml'), 'utf8'));
    const allowed = tpl.Parameters.WorkerTimeoutSeconds.AllowedValues.map(String);
    for (const value of [...allowed, '10', '90', '1200', '0120']) {
      const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1', WORKER_TIMEOUT_SECONDS: value });
      if (allowed.includes(value)) {
        assert.equal(r.status, 0, `WORKER_TIMEOUT_SECONDS=${value}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`WorkerTimeoutSeconds=${value}\n`));
      } else {
        assert.notEqual(r.status, 0, `WORKER_TIMEOUT_SECONDS=${value}: got exit 0`);
        assert.match(r.stderr, /WORKER_TIMEOUT_SECONDS must be one of 30, 60, 120, 300, 600, 900/);
      }
    }
  });

  const BEDROCK = {
    LLM_PROVIDER: 'bedrock',
    BEDROCK_MODEL_ID: 'us.anthropic.claude-3-5-haiku-20241022-v1:0',
    BEDROCK_MODEL_ARNS: [
      'arn:aws:bedrock:eu-west-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0',
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
    ].join(','),
  };

  test('deploy.sh takes exactly the providers the template allows', () => {
    const tpl = parseYaml(readFileSync(path.join(infra, 'template.yaml'), 'utf8'));
    const allowed = tpl.Parameters.LLMProvider.AllowedValues.map(String);
    assert.deepEqual([...allowed].sort(), ['bedrock', 'demo', 'openai']);
    const needs = { openai: { LLM_BASE_URL: 'https://llm.example/v1' }, bedrock: BEDROCK };
    for (const value of [...allowed, 'anthropic', 'Bedrock']) {
      const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1', ...needs[value], LLM_PROVIDER: value });
      if (allowed.includes(value)) {
        assert.equal(r.status, 0, `LLM_PROVIDER=${value}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`LLMProvider=${value}\n`));
      } else {
        assert.notEqual(r.status, 0, `LLM_PROVIDER=${value}: got exit 0`);
        assert.match(r.stderr, /LLM_PROVIDER must be demo, openai or bedrock/);
      }
    }
  });

  test('deploy.sh picks the provider from LLM_BASE_URL when LLM_PROVIDER is unset', () => {
    let r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /LLMProvider=demo\n/);
    assert.match(r.stdout, /BedrockModelArns=\n/);
    r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1', LLM_BASE_URL: 'https://llm.example/v1' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /LLMProvider=openai\n/);
  });

  test('deploy.sh refuses a provider without what it needs, and wildcard model ARNs', () => {
    const cases = [
      [{ LLM_PROVIDER: 'openai' }, /LLM_PROVIDER=openai needs LLM_BASE_URL/],
      [{ LLM_PROVIDER: 'demo', LLM_BASE_URL: 'https://llm.example/v1' }, /LLM_BASE_URL is only for LLM_PROVIDER=openai/],
      [{ ...BEDROCK, BEDROCK_MODEL_ID: '' }, /needs BEDROCK_MODEL_ID/],
      [{ ...BEDROCK, BEDROCK_MODEL_ARNS: '' }, /needs BEDROCK_MODEL_ARNS/],
      [{ ...BEDROCK, BEDROCK_MODEL_ARNS: 'arn:aws:bedrock:*::foundation-model/*' }, /no wildcards/],
    ];
    for (const [env, want] of cases) {
      const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', ...env });
      assert.notEqual(r.status, 0, `${JSON.stringify(env)}: got exit 0`);
      assert.match(r.stderr, want);
      assert.deepEqual(calls(), [], 'nothing uploaded or deployed');
    }
  });

  test('deploy.sh passes the Bedrock parameters', () => {
    const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', ...BEDROCK, BEDROCK_REGION: 'us-east-1', LLM_MAX_TOKENS: '2048', LLM_TEMPERATURE: '0.2' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const deploy = calls().find((a) => a[0] === 'cloudformation' && a[1] === 'deploy');
    assert.ok(deploy, 'cloudformation deploy called');
    for (const want of ['LLMProvider=bedrock', `BedrockModelId=${BEDROCK.BEDROCK_MODEL_ID}`, `BedrockModelArns=${BEDROCK.BEDROCK_MODEL_ARNS}`,
      'BedrockRegion=us-east-1', 'LLMMaxTokens=2048', 'LLMTemperature=0.2', 'LlmBaseUrl=']) {
      assert.ok(deploy.includes(want), `want ${want}, got ${deploy.join(' ')}`);
    }
  });

  test('deploy.sh refuses to run without a bucket', () => {
    const r = run('deploy.sh', {});
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /ARTIFACT_BUCKET/);
  });

  test('deploy.sh uploads, deploys and prints the filled manifest', () => {
    const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', STACK_NAME: 'relay-test', RECEIVER_RESERVED_CONCURRENCY: '25' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const c = calls();
    const cps = c.filter((a) => a[0] === 's3' && a[1] === 'cp');
    assert.equal(cps.length, 2);
    const deploy = c.find((a) => a[0] === 'cloudformation' && a[1] === 'deploy');
    assert.ok(deploy, 'cloudformation deploy called');
    assert.ok(deploy.includes('relay-test'));
    assert.ok(deploy.includes('CAPABILITY_IAM'));
    assert.ok(deploy.some((a) => /^ReceiverZipKey=relay-test\/receiver-[0-9a-f]{64}\.zip$/.test(a)));
    assert.ok(deploy.includes('SigningSecretParam=/slackrelay/prod/signing-secret'));
    assert.ok(deploy.includes('ReceiverReservedConcurrency=25'), `got ${deploy.join(' ')}`);
    assert.match(r.stdout, /request_url: https:\/\/abc123\.execute-api\.eu-west-1\.amazonaws\.com\/slack\/events/);
    assert.match(r.stdout, /url: https:\/\/abc123\.execute-api\.eu-west-1\.amazonaws\.com\/slack\/commands/);
    assert.doesNotMatch(r.stdout, /EXAMPLE/);
  });

  test('deploy.sh with many workspaces passes the client id and secret parameter and turns on the redirect URL', () => {
    const dry = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1', WORKSPACES: 'many' });
    assert.notEqual(dry.status, 0, 'many workspaces without SLACK_CLIENT_ID: got exit 0');
    assert.match(dry.stderr, /SLACK_CLIENT_ID/);
    const bad = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1', WORKSPACES: 'several' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /WORKSPACES must be single or many/);
    const single = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', DRY_RUN: '1', SLACK_CLIENT_ID: '1.2' });
    assert.equal(single.status, 0, single.stderr);
    assert.match(single.stdout, /Workspaces=single\n/);
    assert.match(single.stdout, /SlackClientId=\n/);

    const r = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt', WORKSPACES: 'many', SLACK_CLIENT_ID: '123.456' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const deploy = calls().find((a) => a[0] === 'cloudformation' && a[1] === 'deploy');
    for (const p of ['Workspaces=many', 'SlackClientId=123.456', 'ClientSecretParam=/slackrelay/prod/client-secret']) {
      assert.ok(deploy.includes(p), `${p} not in ${deploy.join(' ')}`);
    }
    const manifest = parseYaml(r.stdout.split('---\n')[1]);
    assert.deepEqual(manifest.oauth_config.redirect_urls, ['https://abc123.execute-api.eu-west-1.amazonaws.com/slack/oauth_redirect']);
    assert.match(r.stdout, /install the app from https:\/\/abc123\.execute-api\.eu-west-1\.amazonaws\.com\/slack\/install/);
    const one = run('deploy.sh', { ARTIFACT_BUCKET: 'bkt' });
    assert.equal(parseYaml(one.stdout.split('---\n')[1]).oauth_config.redirect_urls, undefined);
  });

  test('put-secrets.sh with many workspaces writes the client secret instead of a bot token', () => {
    const r = run('put-secrets.sh', { WORKSPACES: 'many', SLACK_SIGNING_SECRET: 's', SLACK_CLIENT_SECRET: 'client-secret-123' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(calls().map((a) => a[a.indexOf('--name') + 1]), ['/slackrelay/prod/signing-secret', '/slackrelay/prod/client-secret']);
    assert.ok(!r.stdout.includes('client-secret-123') && !calls().some((a) => a.some((x) => x.includes('client-secret-123'))));
    const bad = run('put-secrets.sh', { WORKSPACES: 'many', SLACK_SIGNING_SECRET: 's', SLACK_BOT_TOKEN: 'xoxb-t' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /SLACK_CLIENT_SECRET/);
  });

  test('put-secrets.sh keeps values off the command line and out of its output', () => {
    const secrets = { SLACK_SIGNING_SECRET: 'sigsecret-0123', SLACK_BOT_TOKEN: 'xoxb-token-4567', LLM_API_KEY: 'sk-llm-89' };
    const r = run('put-secrets.sh', secrets);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const c = calls();
    assert.equal(c.length, 3);
    const names = c.map((a) => a[a.indexOf('--name') + 1]);
    assert.deepEqual(names, ['/slackrelay/prod/signing-secret', '/slackrelay/prod/bot-token', '/slackrelay/prod/llm-api-key']);
    for (const a of c) {
      assert.ok(a.includes('SecureString') && a.includes('--overwrite'));
      for (const v of Object.values(secrets)) assert.ok(!a.some((x) => x.includes(v)), 'secret on the command line');
    }
    assert.equal(readFileSync(path.join(logs, 'values.log'), 'utf8'), 'sigsecret-0123\nxoxb-token-4567\nsk-llm-89\n');
    assert.deepEqual(readFileSync(path.join(logs, 'modes.log'), 'utf8').trim().split('\n'), ['600', '600', '600']);
    for (const v of Object.values(secrets)) {
      assert.ok(!r.stdout.includes(v) && !r.stderr.includes(v), 'secret printed');
    }
    assert.ok(r.stdout.indexOf('will write') < r.stdout.indexOf('wrote '), 'names are listed before writing');
  });

  test('put-secrets.sh skips the LLM key when unset and requires the Slack values', () => {
    const r = run('put-secrets.sh', { SLACK_SIGNING_SECRET: 's', SLACK_BOT_TOKEN: 'xoxb-t' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(calls().length, 2);
    const bad = run('put-secrets.sh', { SLACK_BOT_TOKEN: 'xoxb-t' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /SLACK_SIGNING_SECRET/);
    assert.deepEqual(calls(), []);
  });
});

describe('Slack app manifest', () => {
  const m = parseYaml(readFileSync(path.join(infra, 'slack-app-manifest.yaml'), 'utf8'));
  // The scope and event lists grow with the handlers, so only their shape is checked here.
  test('scopes and events', () => {
    const scopes = m.oauth_config.scopes.bot;
    const events = m.settings.event_subscriptions.bot_events;
    for (const [what, list] of [['bot scopes', scopes], ['bot events', events]]) {
      assert.ok(Array.isArray(list) && list.length > 0, `${what}: got ${JSON.stringify(list)}, want a non-empty list`);
      for (const x of list) assert.match(x, /^[a-z_]+([:.][a-z_.]+)?$/, `${what}: ${JSON.stringify(x)}`);
      assert.equal(new Set(list).size, list.length, `${what} repeat: ${list}`);
    }
    if ((m.features.slash_commands || []).length > 0) {
      assert.ok(scopes.includes('commands'), `slash commands need the commands scope, got ${scopes}`);
    }
  });

  test('command, URLs and interactivity', () => {
    assert.equal(m.display_information.name, 'slackrelay');
    assert.equal(m.settings.event_subscriptions.request_url, 'https://EXAMPLE/slack/events');
    assert.equal(m.settings.interactivity.request_url, 'https://EXAMPLE/slack/interactivity');
    assert.equal(m.settings.interactivity.is_enabled, true);
    assert.equal(m.settings.socket_mode_enabled, false);
    const ask = m.features.slash_commands.find((c) => c.command === '/ask');
    assert.equal(ask.url, 'https://EXAMPLE/slack/commands');
  });
});
