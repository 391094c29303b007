"""A stand-in for the Hugging Face Hub's dataset-repo API on 127.0.0.1, for tests of `data push`.

    with HubStandIn() as hub:      # run huggingface_hub with HF_ENDPOINT=hub.url
        ...
        hub.repos["me/data"]       # {path: bytes}: the files of the repo after the commits
        hub.tokens                 # the bearer tokens the requests carried

It answers what `HfApi.create_repo` and `HfApi.upload_folder` ask: repo creation, the card's YAML
check (it must parse), the pre-upload query (every file is sent inline, "regular", never LFS),
the file listing of a revision, and the NDJSON commit of added and deleted files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

_REPO_CALL = re.compile(r"^/api/datasets/([^/]+/[^/]+)/(preupload|commit|tree)/([^/?]+)")


class HubStandIn:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.tokens: set[str] = set()
        self.commits: list[dict] = []  # the header of each commit: summary, description
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                hub._note_token(self.headers)
                match = _REPO_CALL.match(self.path)
                if match and match[2] == "tree" and match[1] in hub.repos:
                    files = hub.repos[match[1]]
                    self._reply([{"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                                 for path, data in sorted(files.items())])
                else:
                    self._reply({"error": "not found"}, 404)

            def do_POST(self) -> None:
                hub._note_token(self.headers)
                body = self._body()
                match = _REPO_CALL.match(self.path)
                if self.path == "/api/repos/create":
                    request = json.loads(body)
                    repo_id = f"{request['organization']}/{request['name']}"
                    hub.repos.setdefault(repo_id, {})
                    self._reply({"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id})
                elif self.path == "/api/validate-yaml":
                    content = json.loads(body)["content"]
                    header = content.split("---\n")[1] if content.startswith("---\n") else ""
                    try:
                        yaml.safe_load(header)
                    except yaml.YAMLError as e:
                        self._reply({"errors": [{"message": str(e)}]}, 400)
                        return
                    self._reply({"errors": [], "warnings": [] if header else [{"message": "empty metadata"}]})
                elif match and match[1] in hub.repos and match[2] == "preupload":
                    files = json.loads(body)["files"]
                    self._reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                           for f in files]})
                elif match and match[1] in hub.repos and match[2] == "commit":
                    hub._commit(match[1], body)
                    oid = hashlib.sha1(body).hexdigest()
                    self._reply({"commitUrl": f"{hub.url}/datasets/{match[1]}/commit/{oid}", "commitOid": oid,
                                 "pullRequestUrl": None})
                else:
                    self._reply({"error": "not found"}, 404)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length", 0)))
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def _reply(self, obj: object, status: int = 200) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _note_token(self, headers) -> None:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            self.tokens.add(auth.removeprefix("Bearer "))

    def _commit(self, repo_id: str, body: bytes) -> None:
        files = self.repos[repo_id]
        for line in body.decode().splitlines():
            entry = json.loads(line)
            if entry["key"] == "header":
                self.commits.append(entry["value"])
            elif entry["key"] == "file":
                files[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
            elif entry["key"] == "deletedFile":
                files.pop(entry["value"]["path"], None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HubStandIn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
