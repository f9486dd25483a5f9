// The image's health check: the service's `/readyz` on its ops port (VOLBACK_OPS_HOST and
// VOLBACK_OPS_PORT, as the service reads them). Exit 0 when ready, 1 otherwise.
const host = process.env['VOLBACK_OPS_HOST'];
const port = process.env['VOLBACK_OPS_PORT'] || '9400';
const target = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
try {
  const response = await fetch(`http://${target.includes(':') ? `[${target}]` : target}:${port}/readyz`, {
    signal: AbortSignal.timeout(4_000),
  });
  if (!response.ok) console.error(`not ready: ${response.status} ${(await response.text()).slice(0, 500)}`);
  process.exitCode = response.ok ? 0 : 1;
} catch (error) {
  console.error(`no answer on port ${port}: ${(error as Error).message}`);
  process.exitCode = 1;
}
