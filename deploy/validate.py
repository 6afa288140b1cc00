#!/usr/bin/env python3
"""Validates the deployment files offline.

Kubernetes manifests: built-in kinds against the Kubernetes OpenAPI schemas bundled in the
`kubernetes-validate` package (strict: unknown fields fail); the CloudNativePG Cluster
against schemas/cnpg-cluster-subset.schema.json. The compose file: YAML, service
references and mounted files. Exits non-zero on the first class of problems found.
"""
import glob
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
K8S_VERSION = "1.30"
problems = []

with open(os.path.join(HERE, "schemas", "cnpg-cluster-subset.schema.json")) as f:
    cnpg_schema = json.load(f)

count = 0
for path in sorted(glob.glob(os.path.join(HERE, "k8s", "*.yaml"))):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        count += 1
        where = f"{os.path.relpath(path, HERE)}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
            try:
                jsonschema.validate(doc, cnpg_schema)
            except jsonschema.ValidationError as e:
                problems.append(f"{where}: {e.message} at {list(e.absolute_path)}")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{where}: {e.message} at {list(e.path)}")
        except Exception as e:  # unknown kind or version
            problems.append(f"{where}: {e}")

compose_path = os.path.join(HERE, "compose", "compose.yaml")
with open(compose_path) as f:
    compose = yaml.safe_load(f)
services = compose.get("services", {})
for name, svc in services.items():
    deps = svc.get("depends_on", {})
    for dep in deps if isinstance(deps, (list, dict)) else []:
        if dep not in services:
            problems.append(f"compose: {name} depends on unknown service {dep}")
    for vol in svc.get("volumes", []) or []:
        src = vol.split(":")[0]
        if src.startswith("."):
            full = os.path.normpath(os.path.join(HERE, "compose", src))
            if not os.path.exists(full):
                problems.append(f"compose: {name} mounts missing file {src}")

# The Kubernetes migrate job applies the grants from its ConfigMap: they must be the
# grants of deploy/postgres/grants.sql, or the application role lacks tables added since.
with open(os.path.join(HERE, "postgres", "grants.sql")) as f:
    grants = f.read().strip()
with open(os.path.join(HERE, "k8s", "configmap.yaml")) as f:
    for doc in yaml.safe_load_all(f):
        if doc and doc.get("kind") == "ConfigMap" and "grants.sql" in doc.get("data", {}):
            if doc["data"]["grants.sql"].strip() != grants:
                problems.append("k8s/configmap.yaml: grants.sql differs from postgres/grants.sql")

unit = open(os.path.join(HERE, "systemd", "tiaojie.service")).read()
for key in ["[Unit]", "[Service]", "[Install]", "ExecStart=", "User=tiaojie", "NoNewPrivileges=yes"]:
    if key not in unit:
        problems.append(f"systemd unit lacks {key}")

if problems:
    print("deployment files are NOT valid:")
    for p in problems:
        print("  -", p)
    sys.exit(1)
print(f"deployment files are valid: {count} Kubernetes objects (Kubernetes {K8S_VERSION}), compose file with {len(services)} services, systemd unit")
