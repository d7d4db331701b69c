#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A hostile OCI registry for tests/security/hostile-images.sh (Distribution v2 API, plain
HTTP on loopback). Each repository name is a scenario; its tag "t" is an image built to attack
the client or the unpacker:

  ok           a well-formed one-layer image (the control case)
  selfref      an index whose only entry is "itself": every manifest request gets the index
  hugemanifest the manifest endpoint streams forever
  bigconfig    the manifest declares a 1 GiB config, and the blob streams on
  endlessconfig  the config blob is declared small and streams forever
  layershort   a layer declared 1 MiB that is 100 bytes long
  layerlong    a layer declared 100 bytes that streams forever
  stall        a layer that sends half and then nothing (the connection stays open)
  gzbomb       a gzip layer of 260 KiB that inflates to 256 MiB of zeros in one file
  manyfiles    100 000 empty files in one layer
  deepdirs     a file 300 directories deep
  longname     a file whose name is 5000 bytes long
  longcomp     a file whose name has a 300-byte component
  dotdotpax    a PAX header whose path is ../../escape
  whiteoutdotdot  a whiteout named ".wh..." (whiting out "..") and "../.wh.x"
  xattrdotdot  an entry with xattrs whose path is "a/../../x"
  trustedxattr a file with trusted.overlay.opaque and security.capability xattrs

Prints "port N" on stdout once listening (port 0: the kernel's choice).
"""
import gzip
import hashlib
import http.server
import io
import json
import socketserver
import sys
import tarfile
import threading
import time
import zlib

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tar_of(members, fmt=tarfile.PAX_FORMAT):
    """members: (TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_entry(name, data=b"", mode=0o644, pax=None):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = 0
    if pax:
        ti.pax_headers = pax
    return ti, data


def dir_entry(name):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    return ti, None


def config_for(layers_tar):
    return json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers_tar]},
    }).encode()


class Image:
    """blobs: digest -> bytes (or a callable streaming scenario); manifests: ref -> (type, body)."""

    def __init__(self):
        self.blobs = {}
        self.manifests = {}
        self.blob_size = {}  # declared sizes that lie


def simple(layer_tar, gz=True, declared=None, config=None):
    img = Image()
    layer = gzip.compress(layer_tar, mtime=0) if gz else layer_tar
    cfg = config if config is not None else config_for([layer_tar])
    img.blobs[sha(layer)] = layer
    img.blobs[sha(cfg)] = cfg
    man = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": OCI_LAYER if gz else OCI_LAYER_TAR, "digest": sha(layer),
                    "size": declared if declared is not None else len(layer)}],
    }).encode()
    img.manifests["t"] = (OCI_MANIFEST, man)
    img.manifests[sha(man)] = (OCI_MANIFEST, man)
    img.layer_digest = sha(layer)
    img.config_digest = sha(cfg)
    return img


def build():
    imgs = {}
    imgs["ok"] = simple(tar_of([file_entry("hello", b"hi\n")]))

    # An index that names a digest; the registry answers every manifest request with the
    # index itself.
    img = Image()
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "digest": "sha256:" + "ab" * 32, "size": 300,
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    img.manifests["*"] = (OCI_INDEX, body)
    imgs["selfref"] = img

    img = Image()
    img.manifests["t"] = (OCI_MANIFEST, "endless")
    imgs["hugemanifest"] = img

    img = simple(tar_of([file_entry("x")]))
    man = json.loads(img.manifests["t"][1])
    man["config"]["size"] = 1 << 30
    m = json.dumps(man).encode()
    img.manifests["t"] = (OCI_MANIFEST, m)
    img.blobs[img.config_digest] = "endless"  # and it really is that big
    imgs["bigconfig"] = img

    img = simple(tar_of([file_entry("x")]))
    img.blobs[img.config_digest] = "endless"
    imgs["endlessconfig"] = img

    img = simple(tar_of([file_entry("x", b"y" * 50)]), declared=1 << 20)
    imgs["layershort"] = img

    img = simple(tar_of([file_entry("x")]), declared=100)
    img.blobs[img.layer_digest] = "endless"
    imgs["layerlong"] = img

    img = simple(tar_of([file_entry("x", b"z" * 65536)]))
    img.blobs[img.layer_digest] = ("stall", img.blobs[img.layer_digest])
    imgs["stall"] = img

    # 256 MiB of zeros in one file (1000:1), gzip'd in a stream (never held whole).
    size = 256 << 20
    head = tarfile.TarInfo("zeros")
    head.size = size
    head.mtime = 0
    hdr = head.tobuf(format=tarfile.GNU_FORMAT)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(hdr)]
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        out.append(comp.compress(chunk))
    out.append(comp.compress(bytes(1024)))  # end of archive
    out.append(comp.flush())
    layer = b"".join(out)
    # the diff_id is the uncompressed tar's digest: hashed in the same stream
    h = hashlib.sha256(hdr)
    for _ in range(size >> 20):
        h.update(chunk)
    h.update(bytes(1024))
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + h.hexdigest()]}}).encode()
    img = Image()
    img.blobs[sha(layer)] = layer
    img.blobs[sha(cfg)] = cfg
    man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": OCI_LAYER, "digest": sha(layer),
                                  "size": len(layer)}]}).encode()
    img.manifests["t"] = (OCI_MANIFEST, man)
    imgs["gzbomb"] = img

    imgs["manyfiles"] = simple(tar_of([dir_entry("d")] +
                                      [file_entry("d/f%d" % i) for i in range(100000)],
                                      fmt=tarfile.GNU_FORMAT))
    imgs["deepdirs"] = simple(tar_of([file_entry("/".join(["d"] * 300) + "/f", b"deep")]))
    imgs["longname"] = simple(tar_of([file_entry("/".join(["n" * 200] * 25) + "/f")]))
    imgs["longcomp"] = simple(tar_of([file_entry("c" * 300, b"x")]))
    imgs["dotdotpax"] = simple(tar_of([file_entry("innocent", b"x",
                                                  pax={"path": "../../escape"})]))
    imgs["whiteoutdotdot"] = simple(tar_of([file_entry("a/.wh...", b""),
                                            file_entry("../.wh.x", b"")]))
    imgs["xattrdotdot"] = simple(tar_of([file_entry("a/../../x", b"x",
                                                    pax={"SCHILY.xattr.user.evil": "1"})]))
    imgs["trustedxattr"] = simple(tar_of([file_entry(
        "f", b"x", mode=0o755,
        pax={"SCHILY.xattr.trusted.overlay.opaque": "y",
             "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\xff\xff\xff\xff"})]))
    return imgs


IMAGES = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, ctype=None, body=b"", extra=None):
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def endless(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.end_headers()  # no length: until the client hangs up
        self.close_connection = True
        chunk = b"{" * 65536
        try:
            while True:
                self.wfile.write(chunk)
        except OSError:
            pass

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/v2/" or p == "/v2":
            return self.send(200, "application/json", b"{}")
        parts = p.split("/")
        # /v2/evil/<scenario>/{manifests,blobs}/<ref>
        if len(parts) != 6 or parts[1] != "v2" or parts[2] != "evil":
            return self.send(404, "application/json", b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        img = IMAGES.get(parts[3])
        kind, ref = parts[4], parts[5]
        if img is None:
            return self.send(404, "application/json", b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        if kind == "manifests":
            m = img.manifests.get(ref) or img.manifests.get("*")
            if m is None:
                return self.send(404, "application/json", b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            ctype, body = m
            if body == "endless":
                return self.endless(ctype)
            return self.send(200, ctype, body, {"Docker-Content-Digest": sha(body)})
        if kind == "blobs":
            b = img.blobs.get(ref)
            if b is None:
                return self.send(404, "application/json", b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            if b == "endless":
                return self.endless("application/octet-stream")
            if isinstance(b, tuple) and b[0] == "stall":
                data = b[1]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                time.sleep(120)  # the client gives up first
                self.close_connection = True
                return
            return self.send(200, "application/octet-stream", b)
        return self.send(404)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    IMAGES.update(build())
    srv = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print("port %d" % srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
