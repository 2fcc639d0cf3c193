"""A `helm` CLI shim over helm-python-sdk (Helm v4's Go engine as a C library).

Why: tests need real `helm template` output, but the official helm binary is a
download from outside the package registries this project can reach. The
helm-python-sdk wheel on PyPI ships Helm's own engine, so rendering here is
Helm's rendering; this file only re-creates the CLI around it.

Supported: `helm template`, `helm version`, `helm help`. Anything else exits 2
with a message on stderr, so a caller never mistakes a gap for a result.

How `helm template` is reproduced (see helm pkg/cmd/template.go):
  * the non-hook manifest comes from the SDK's install action in client
    dry-run mode with Replace set, which is exactly what `helm template` runs
    (same sorting, same `# Source:` headers, same --kube-version and
    --api-versions handling);
  * the SDK's release summary carries no hooks, so hooks are taken from the
    engine's plain render of the same chart and values and sorted the way
    helm's releaseutil.SortManifests sorts them (the rules are copied below);
  * --include-crds prepends the chart's CRD files like renderResources does.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, NoReturn

USAGE = """\
helm (tender test shim over helm-python-sdk)

Usage:
  helm template [NAME] [CHART] [flags]
  helm version [--short]

Supported template flags:
  -n, --namespace NS            namespace for .Release.Namespace (default "default")
  -f, --values FILE             values file (repeatable, merged in order; "-" = stdin)
      --set k=v                 set values (repeatable; dotted paths, lists {a,b})
      --set-string k=v          set STRING values
      --set-json k=JSON         set JSON values
      --set-literal k=v         set a literal STRING value
      --set-file k=PATH         set a value from a file's content
      --include-crds            include CRDs in the output
      --skip-tests              skip test hooks
      --no-hooks                omit hooks
      --skip-schema-validation  do not validate values against values.schema.json
      --kube-version V          Capabilities.KubeVersion
  -a, --api-versions V[,V]      Capabilities.APIVersions (repeatable)
      --version V               chart version constraint (--repo / oci:// charts)
      --repo URL                chart repository URL (CHART is then a chart name)
      --plain-http              use plain HTTP for oci:// charts
      --insecure-skip-tls-verify
      --username U / --password P   repository credentials
      --release-name            accepted; only meaningful with --output-dir (unsupported)
      --dry-run=client          accepted (the only mode)
      --debug                   accepted, no effect
"""

# helm releaseutil.InstallOrder: hooks are sorted by kind in this order.
INSTALL_ORDER = [
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
]
_KIND_RANK = {kind: i for i, kind in enumerate(INSTALL_ORDER)}

# helm release.HookEvent names accepted in the helm.sh/hook annotation.
HOOK_EVENTS = {
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
}
TEST_EVENTS = {"test", "test-success"}

# helm releaseutil.SplitManifests separator; Go's \s is [\t\n\f\r ].
_SEP = re.compile(r"(?:^|[\t\n\f\r ]*\n)---[\t\n\f\r ]*")
_GO_SPACE = "\t\n\v\f\r \x85\xa0"

# A kubeconfig that points nowhere: a client dry run never contacts a cluster,
# and this keeps the user's own KUBECONFIG out of the picture.
_DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: helm-shim
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: helm-shim
  context: {cluster: helm-shim, user: helm-shim}
current-context: helm-shim
users:
- name: helm-shim
  user: {}
"""


class Unsupported(Exception):
    """A valid helm invocation this shim does not implement (exit 2)."""


class HelmFailure(Exception):
    """An error helm itself would report (exit 1)."""


def die(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"Error: {message}\n")
    sys.exit(code)


# --- argument parsing (pflag-like: interspersed flags, --x=v, -xv, -x=v) -------

VALUE_FLAGS = {
    "namespace": "namespace",
    "values": "values",
    "set": "set",
    "set-string": "set_string",
    "set-json": "set_json",
    "set-literal": "set_literal",
    "set-file": "set_file",
    "kube-version": "kube_version",
    "api-versions": "api_versions",
    "version": "version",
    "repo": "repo",
    "username": "username",
    "password": "password",
    "dry-run": "dry_run",
}
BOOL_FLAGS = {
    "include-crds": "include_crds",
    "skip-tests": "skip_tests",
    "no-hooks": "no_hooks",
    "skip-schema-validation": "skip_schema_validation",
    "plain-http": "plain_http",
    "insecure-skip-tls-verify": "insecure_skip_tls_verify",
    "release-name": "release_name",
    "debug": "debug",
    "short": "short",
    "help": "help",
}
SHORT_FLAGS = {"n": "namespace", "f": "values", "a": "api-versions", "h": "help"}
REPEATABLE = {"values", "set", "set_string", "set_json", "set_literal", "set_file", "api_versions"}
# Real helm flags this shim knows of but does not implement.
KNOWN_UNSUPPORTED = {
    "show-only": True,
    "output-dir": True,
    "post-renderer": True,
    "post-renderer-args": True,
    "is-upgrade": False,
    "generate-name": False,
    "name-template": True,
    "dependency-update": False,
    "devel": False,
    "verify": False,
    "keyring": True,
    "ca-file": True,
    "cert-file": True,
    "key-file": True,
    "validate": False,
    "kube-context": True,
    "kubeconfig": True,
    "registry-config": True,
    "repository-config": True,
    "repository-cache": True,
    "template": True,
}


@dataclass
class Args:
    positional: list[str] = field(default_factory=list)
    namespace: str = "default"
    values: list[str] = field(default_factory=list)
    set: list[str] = field(default_factory=list)
    set_string: list[str] = field(default_factory=list)
    set_json: list[str] = field(default_factory=list)
    set_literal: list[str] = field(default_factory=list)
    set_file: list[str] = field(default_factory=list)
    kube_version: str = ""
    api_versions: list[str] = field(default_factory=list)
    version: str = ""
    repo: str = ""
    username: str = ""
    password: str = ""
    dry_run: str = "client"
    include_crds: bool = False
    skip_tests: bool = False
    no_hooks: bool = False
    skip_schema_validation: bool = False
    plain_http: bool = False
    insecure_skip_tls_verify: bool = False
    release_name: bool = False
    debug: bool = False
    short: bool = False
    help: bool = False


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise HelmFailure(f'invalid argument "{text}" for "--{name}" flag: invalid syntax')


def parse_args(argv: list[str]) -> Args:
    args = Args()
    i = 0

    def set_value(long: str, value: str) -> None:
        attr = VALUE_FLAGS[long]
        if attr in REPEATABLE:
            if attr == "api_versions":
                args.api_versions.extend(v for v in value.split(",") if v)
            else:
                getattr(args, attr).append(value)
        else:
            setattr(args, attr, value)

    def take_value(long: str, inline: str | None) -> None:
        nonlocal i
        if inline is not None:
            set_value(long, inline)
            return
        if i + 1 >= len(argv):
            raise HelmFailure(f"flag needs an argument: --{long}")
        i += 1
        set_value(long, argv[i])

    def handle(long: str, inline: str | None) -> None:
        if long in VALUE_FLAGS:
            if long == "dry-run" and inline is None:
                # helm: a bare --dry-run means the template default ("client").
                set_value(long, "client")
                return
            take_value(long, inline)
        elif long in BOOL_FLAGS:
            value = True if inline is None else _parse_bool(long, inline)
            setattr(args, BOOL_FLAGS[long], value)
        elif long in KNOWN_UNSUPPORTED:
            raise Unsupported(f"flag --{long} is not supported by this helm shim")
        else:
            raise Unsupported(f"unknown flag: --{long} (not supported by this helm shim)")

    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.positional.extend(argv[i + 1 :])
            break
        if arg.startswith("--"):
            name, eq, inline = arg[2:].partition("=")
            handle(name, inline if eq else None)
        elif arg.startswith("-") and len(arg) > 1:
            letter, rest = arg[1], arg[2:]
            if letter not in SHORT_FLAGS:
                raise Unsupported(f"unknown shorthand flag: '{letter}' in {arg}")
            long = SHORT_FLAGS[letter]
            if long in BOOL_FLAGS:
                if rest:
                    raise Unsupported(f"combined shorthand flags are not supported: {arg}")
                handle(long, None)
            else:
                inline = rest[1:] if rest.startswith("=") else (rest or None)
                handle(long, inline)
        else:
            args.positional.append(arg)
        i += 1
    return args


# --- values (helm pkg/cli/values Options.MergeValues) -------------------------


def merge_maps(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """helm's mergeMaps: nested maps merge, anything else in b replaces."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def read_values_file(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path):
        raise Unsupported(f"values from URLs are not supported by this helm shim: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise HelmFailure(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from exc


def collect_values(helm: Any, args: Args) -> dict[str, Any]:
    """Files, then --set-json, --set, --set-string, --set-file, --set-literal.

    Helm applies each --set* onto the merged map with strvals.ParseInto; here
    each expression is parsed by the same strvals code and merged with
    mergeMaps, which differs only for list-index paths (a[1]=x) that
    overwrite a list coming from a values file.
    """
    base: dict[str, Any] = {}
    for path in args.values:
        try:
            current = helm.values_from_yaml(read_values_file(path))
        except helm.HelmError as exc:
            raise HelmFailure(f"failed to parse {path}: {exc}") from exc
        base = merge_maps(base, current or {})
    parsers = [
        (args.set_json, helm.parse_set_json, "failed parsing --set-json data"),
        (args.set, helm.parse_set_string, "failed parsing --set data"),
        (args.set_string, helm.parse_set_string_values, "failed parsing --set-string data"),
        (args.set_file, helm.parse_set_file, "failed parsing --set-file data"),
        (args.set_literal, helm.parse_set_literal, "failed parsing --set-literal data"),
    ]
    for expressions, parse, what in parsers:
        for expression in expressions:
            try:
                base = merge_maps(base, parse(expression))
            except helm.HelmError as exc:
                raise HelmFailure(f"{what}: {exc}") from exc
    return base


# --- hooks (helm releaseutil.SortManifests, hook half) ------------------------


def split_manifests(big_file: str) -> list[str]:
    docs = _SEP.split(big_file.lstrip(_GO_SPACE))
    return [d.lstrip(_GO_SPACE) for d in docs if d != ""]


def _kind_sort_key(item: tuple[int, str, str, str]) -> tuple[int, str, int]:
    """helm's lessByKind: known kinds by rank, then unknown kinds by name."""
    kind = item[1]
    if kind in _KIND_RANK:
        return (0, "", _KIND_RANK[kind])
    return (1, kind, 0)


def sorted_hooks(helm: Any, files: dict[str, str]) -> list[tuple[str, str, set[str]]]:
    """Return (path, manifest, events) for every hook, in helm's order."""
    found: list[tuple[int, str, str, str]] = []
    events_of: dict[int, set[str]] = {}
    for path in sorted(files):
        content = files[path]
        if os.path.basename(path).startswith("_") or path.endswith("NOTES.txt"):
            continue
        if content.strip(_GO_SPACE) == "":
            continue
        for doc in split_manifests(content):
            try:
                head = helm.values_from_yaml(doc) or {}
            except helm.HelmError:
                continue  # not a mapping: helm's install step would have failed first
            metadata = head.get("metadata") or {}
            annotations = metadata.get("annotations") or {}
            hook_types = annotations.get("helm.sh/hook")
            if not isinstance(hook_types, str):
                continue
            events = {t.strip().lower() for t in hook_types.split(",")}
            if not events <= HOOK_EVENTS:
                continue  # helm skips hooks with an unknown event entirely
            index = len(found)
            found.append((index, str(head.get("kind") or ""), path, doc))
            events_of[index] = events
    # Python's sort is stable, like sort.SliceStable in sortHooksByKind.
    found.sort(key=_kind_sort_key)
    return [(path, doc, events_of[index]) for index, _, path, doc in found]


# --- chart resolution -----------------------------------------------------------


def load_chart(helm: Any, args: Args, ref: str, scratch: str) -> Any:
    is_oci = ref.startswith("oci://")
    if not is_oci and not args.repo:
        if os.path.exists(ref):
            try:
                return helm.Chart.load(ref)
            except helm.HelmError as exc:
                raise HelmFailure(str(exc)) from exc
        if ref.startswith((".", "/")) or ref.endswith(".tgz") or os.sep not in ref:
            raise HelmFailure(f'path "{ref}" not found')
        raise Unsupported(
            f"chart repository aliases ({ref}) are not supported by this helm shim; "
            "use a path, an oci:// reference or --repo URL"
        )
    try:
        helm.pull(
            ref,
            destination=scratch,
            version=args.version or None,
            repo_url=args.repo or None,
            plain_http=args.plain_http,
            insecure_skip_tls_verify=args.insecure_skip_tls_verify,
            username=args.username or None,
            password=args.password or None,
        )
    except helm.HelmError as exc:
        raise HelmFailure(str(exc)) from exc
    archives = [name for name in os.listdir(scratch) if name.endswith(".tgz")]
    if len(archives) != 1:
        raise HelmFailure(f"pulling {ref} produced {len(archives)} chart archives")
    return helm.Chart.load(os.path.join(scratch, archives[0]))


# --- commands -------------------------------------------------------------------


def cmd_template(args: Args) -> int:
    import helm_python as helm
    from helm_python import _native

    if args.short:
        raise Unsupported("flag --short is only valid for helm version")
    if args.dry_run not in ("client", "true", "unset"):
        raise Unsupported(f"--dry-run={args.dry_run} is not supported by this helm shim")
    positional = args.positional
    if not positional:
        raise HelmFailure('"helm template" requires at least 1 argument')
    if len(positional) > 2:
        raise HelmFailure(f"expected at most two arguments, unexpected arguments: {' '.join(positional[2:])}")
    name, ref = ("release-name", positional[0]) if len(positional) == 1 else positional

    values = collect_values(helm, args)
    with tempfile.TemporaryDirectory(prefix="helm-shim-") as scratch:
        chart = load_chart(helm, args, ref, scratch)
        with chart, helm.Config(kubeconfig_content=_DUMMY_KUBECONFIG, namespace=args.namespace) as cfg:
            opts: dict[str, Any] = {
                "namespace": args.namespace,
                "dry_run": "client",
                "replace": True,
                "disable_hooks": args.no_hooks,
                "skip_schema_validation": args.skip_schema_validation,
            }
            if args.kube_version:
                opts["kube_version"] = args.kube_version
            if args.api_versions:
                opts["api_versions"] = args.api_versions
            try:
                summary = json.loads(
                    _native.call_string(
                        "helm_install",
                        cfg._raw(),
                        _native.HANDLE(0),
                        chart._raw(),
                        None,
                        name,
                        json.dumps(values),
                        json.dumps(opts),
                    )
                )
            except helm.HelmError as exc:
                raise HelmFailure(str(exc)) from exc

            manifest = summary.get("manifest", "")
            if args.include_crds:
                crds = "".join(f"---\n# Source: {c['filename']}\n{c['data']}\n" for c in chart.crds)
                manifest = crds + manifest
            out = [manifest.strip(_GO_SPACE) + "\n"]

            if not args.no_hooks:
                files = chart.render(
                    values, name=name, namespace=args.namespace, revision=1, is_install=True
                )
                for path, doc, events in sorted_hooks(helm, files):
                    if args.skip_tests and events & TEST_EVENTS:
                        continue
                    out.append(f"---\n# Source: {path}\n{doc}\n")

    sys.stdout.buffer.write("".join(out).encode("utf-8"))
    sys.stdout.flush()
    return 0


def cmd_version(args: Args) -> int:
    if args.positional:
        raise HelmFailure(f'unknown command "{args.positional[0]}" for "helm version"')
    import helm_python as helm

    sdk = helm.helm_sdk_version()
    if args.short:
        sys.stdout.write(f"{sdk}+helm-python-sdk.{helm.__version__}\n")
    else:
        sys.stdout.write(
            f'version.BuildInfo{{Version:"{sdk}", GitCommit:"helm-python-sdk {helm.__version__} shim '
            f'(libhelm_c {helm.helm_c_version()})", GitTreeState:"clean", GoVersion:"unknown"}}\n'
        )
    return 0


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
        if not args.positional or args.positional[0] == "help":
            sys.stdout.write(USAGE)
            return 0
        command, args.positional = args.positional[0], args.positional[1:]
        if args.help:
            sys.stdout.write(USAGE)
            return 0
        if command == "template":
            return cmd_template(args)
        if command == "version":
            return cmd_version(args)
        raise Unsupported(f'command "{command}" is not supported by this helm shim (only template, version)')
    except Unsupported as exc:
        die(str(exc), 2)
    except HelmFailure as exc:
        die(str(exc), 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
