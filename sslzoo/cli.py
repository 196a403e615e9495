"""The ``sslzoo`` command line: list, inspect, download and publish pretrained encoders.

    sslzoo list [PATTERN] [--pretrained]
    sslzoo info NAME
    sslzoo download NAME
    sslzoo push DIR REPO_ID [--dry-run] [--private] [--revision REV] [--message MSG]

``push`` takes its token from ``HF_TOKEN`` or ``huggingface-cli login`` only: a token on the command line
would end up in shell history and process listings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _status(entry, tag: str) -> str:
    from .hub import local_hub_dir

    ptag = entry.tags[tag]
    if (local_hub_dir(entry.name, tag) / ptag.filename).is_file():
        return "local hub"
    return "published" if ptag.published else "not trained yet"


def _cmd_list(args: argparse.Namespace) -> int:
    from .registry import get_entry, list_models

    names = list_models(args.pattern, pretrained=args.pretrained)
    for name in names:
        if args.pretrained:
            entry, tag = get_entry(name)
            print(f"{name:48s} {_status(entry, tag)}")
        else:
            print(name)
    if not names:
        print(f"no models match {args.pattern!r}", file=sys.stderr)
    return 0


def _where(entry, tag: str | None) -> str:
    """Where ``pretrained=True`` would load from, looking only at local files (no network)."""
    from .hub import PretrainedNotFoundError, resolve_pretrained

    if tag is None:
        return f"no pretrained weight sets; train with: {entry.train_command()}"
    try:
        resolved = resolve_pretrained(entry, tag, True, download=False)
        return f"{resolved.origin}: {resolved.path}"
    except PretrainedNotFoundError as e:
        ptag = entry.tags[tag]
        if ptag.published:
            return f"not downloaded yet; `sslzoo download` fetches {ptag.hf_hub_id}@{ptag.revision}"
        return "not available locally:\n    " + "\n    ".join(str(e).splitlines()[1:])


def _cmd_info(args: argparse.Namespace) -> int:
    from .backbones import ARCHS
    from .cards import METHOD_INFO
    from .registry import get_entry

    entry, tag = get_entry(args.name)
    tag = tag or entry.default_tag
    spec = ARCHS[entry.arch]
    print(f"name:          {entry.name}")
    print(f"arch:          {entry.arch} (timm: {spec.timm_name}, input {spec.input_size[1]}px)")
    print(f"method:        {entry.method}")
    if entry.method in METHOD_INFO:
        m = METHOD_INFO[entry.method]
        print(f"paper:         {m.title} ({m.citation}, arXiv:{m.arxiv})")
    print(f"recipe:        {entry.train_command(tag)}")
    try:
        hparams = entry.hparams
        print("hparams:       " + ", ".join(f"{k}={v}" for k, v in sorted(hparams.items())))
    except Exception as e:  # the methods package is optional for inspecting the registry
        print(f"hparams:       unavailable ({type(e).__name__}: {e})")
    print(
        "tags:          "
        + (", ".join(sorted(entry.tags)) or "none")
        + (f" (default {entry.default_tag})" if entry.default_tag else "")
    )
    for t, ptag in sorted(entry.tags.items()):
        metrics = ", ".join(f"{k}={v}" for k, v in sorted(ptag.metrics.items())) or "no metrics yet"
        print(
            f"  .{t}: {ptag.hf_hub_id}@{ptag.revision}  data={ptag.dataset or '?'}  {metrics}  [{_status(entry, t)}]"
        )
        if ptag.sha256:
            print(f"      sha256 {ptag.sha256}")
    print(f"weights:       {_where(entry, tag)}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .hub import resolve_pretrained
    from .registry import get_entry

    entry, tag = get_entry(args.name)
    resolved = resolve_pretrained(entry, tag or entry.default_tag, True)
    print(resolved.path)
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_to_hub

    result = push_to_hub(
        args.directory,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.message,
        dry_run=args.dry_run,
    )
    if not args.dry_run:
        print(f"pushed {args.directory} to {getattr(result, 'commit_url', args.repo_id)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sslzoo", description="Self-supervised encoders: list, inspect, download, publish."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered models (or pretrained weight sets)")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet50_*'")
    p.add_argument("--pretrained", action="store_true", help="list name.tag weight sets with their status")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="config, paper, recipe and where the weights resolve from")
    p.add_argument("name")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("download", help="fetch a weight set into the HF cache and print its path")
    p.add_argument("name")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("push", help="verify a save directory and upload it to the Hugging Face Hub")
    p.add_argument("directory")
    p.add_argument("repo_id", help="ORG/NAME")
    p.add_argument("--dry-run", action="store_true", help="print files, sizes and the card; upload nothing")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    p.add_argument("--message", default=None, help="commit message")
    p.set_defaults(func=_cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sslzoo`` console script; returns the exit status."""
    from .hub import HubError, PretrainedNotFoundError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (PretrainedNotFoundError, HubError, ValueError, FileNotFoundError) as e:
        print(f"sslzoo {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
