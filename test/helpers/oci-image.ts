import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

/**
 * Writes an OCI image archive (oci-layout, index.json, blobs) of one layer made from
 * `rootfs`, tagged `ref`, as `ctr images import` reads it. There is no registry here,
 * so the test image is built from the fixture rootfs.
 */
export function writeOciArchive(rootfs: string, ref: string, workDir: string, cmd: string[] = ['sh']): string {
  const layout = fs.mkdtempSync(path.join(workDir, 'oci-'));
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer) => {
    const digest = crypto.createHash('sha256').update(data).digest('hex');
    fs.writeFileSync(path.join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const tar = spawnSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30, timeout: 60_000 });
  if (tar.status !== 0) throw new Error(`tar of ${rootfs} failed: ${tar.stderr}`);
  const diffId = `sha256:${crypto.createHash('sha256').update(tar.stdout).digest('hex')}`;
  const layer = put(zlib.gzipSync(tar.stdout));
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        os: 'linux',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: cmd },
        rootfs: { type: 'layers', diff_ids: [diffId] },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
      }),
    ),
  );
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.split(':').pop() },
        },
      ],
    }),
  );
  const archive = `${layout}.tar`;
  const t = spawnSync('tar', ['-C', layout, '-cf', archive, '.'], { timeout: 60_000 });
  if (t.status !== 0) throw new Error(`tar of the layout failed: ${t.stderr}`);
  fs.rmSync(layout, { recursive: true, force: true });
  return archive;
}
