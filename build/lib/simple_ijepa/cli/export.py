"""Export a trained encoder as a timm VisionTransformer (the library: simple_ijepa/export.py) or a
Hugging Face IJepaModel (simple_ijepa/huggingface.py), or convert an official I-JEPA checkpoint into
our encoder file (simple_ijepa/official.py).

    python -m simple_ijepa.export --ckpt_path models/encoder_ddp.pth --timm encoder_timm.safetensors
    python -m simple_ijepa.export --ckpt_path models/encoder_ddp.pth --hf encoder_hf
    python -m simple_ijepa.export --from_official IN1K-vit.h.14-300e.pth.tar --out vith14.pth
"""
from __future__ import annotations

import argparse
import os

from ..checkpoints import load_encoder, save_encoder
from ..errors import ConfigError, run_command
from ..export import from_official, save_timm, timm_load_snippet
from ..huggingface import save_hf
from . import checks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = checks.parser("python -m simple_ijepa.export", "Export a trained encoder as a timm VisionTransformer or a "
                      "Hugging Face IJepaModel, or an official I-JEPA checkpoint as our encoder file.")
    p.add_argument("--ckpt_path",
                   help="encoder file (encoder_*.pth / .safetensors) or training checkpoint (its EMA teacher)")
    p.add_argument("--timm", metavar="OUT.safetensors",
                   help="where to write the timm state dict (its timm kwargs go in the file's metadata)")
    p.add_argument("--hf", metavar="DIR", help="write a Hugging Face transformers IJepaModel folder (config.json + "
                   "model.safetensors) for IJepaModel.from_pretrained(DIR); needs transformers")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of --timm and --out, and an earlier export in --hf, if they exist")
    add_official_args(p)
    args = p.parse_args(argv)
    check_official_args(p, args)
    if args.timm is not None and not args.timm.endswith(".safetensors"):
        p.error(f"--timm {args.timm!r}: the file is written as safetensors; give it a .safetensors name.")
    return args


def add_official_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("official I-JEPA checkpoints (facebookresearch/ijepa), our encoder file")
    g.add_argument("--from_official", metavar="PATH",
                   help="the input instead of --ckpt_path: an official checkpoint (e.g. IN1K-vit.h.14-300e.pth.tar), "
                        "whose target encoder is exported")
    g.add_argument("--out", metavar="OUT.pth", help="also write the encoder as our encoder file (+ .safetensors "
                   "beside it), which load_encoder and logging.init_from read")
    g.add_argument("--heads", type=checks.positive_int, help="--from_official: the encoder's heads, for a width "
                   "that is none of the official sizes (they are not in the weights)")


def check_official_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One input (--ckpt_path or --from_official), at least one output (--timm, --hf, --out)."""
    if (args.ckpt_path is None) == (args.from_official is None):
        p.error("give one input: --ckpt_path PATH (our encoder or training checkpoint) or --from_official PATH "
                "(an official I-JEPA checkpoint).")
    if args.timm is None and args.hf is None and args.out is None:
        p.error("nothing to write: give --timm OUT.safetensors, --hf DIR and/or --out OUT.pth.")
    if args.out is not None and not args.out.endswith(".pth"):
        p.error(f"--out {args.out!r}: our encoder file is a .pth (its .safetensors goes beside it); give a .pth name.")
    if args.heads is not None and args.from_official is None:
        p.error("--heads takes a positive number, with --from_official only.")


HF_FILES = ("config.json", "model.safetensors")  # what save_hf writes


def check_outputs(args: argparse.Namespace) -> None:
    """Every file the command will write, checked before the input is read (ConfigError naming the argument)."""
    inputs = [args.ckpt_path, args.from_official]
    if args.timm is not None:
        checks.output_file(args.timm, "--timm", args.overwrite, inputs)
    if args.out is not None:
        beside = os.path.splitext(args.out)[0] + ".safetensors"
        if args.timm is not None and os.path.abspath(args.timm) == os.path.abspath(beside):
            raise ConfigError(f"--out {args.out!r} writes {beside!r} beside it, which is --timm; "
                              "give --timm another name.")
        for path in (args.out, beside):
            checks.output_file(path, "--out", args.overwrite, inputs)
    if args.hf is not None:
        checks.output_dir(args.hf, "--hf", inputs)
        present = sorted(os.listdir(args.hf)) if os.path.isdir(args.hf) else []
        others = [f for f in present if f not in HF_FILES]
        if others:  # a loader would mix them with the export (another model's weights, an old config)
            raise ConfigError(f"--hf {args.hf!r} holds other files ({', '.join(others[:3])}); export into an empty "
                              "folder (or one holding only an earlier export, with --overwrite).")
        if present and not args.overwrite:
            raise ConfigError(f"--hf {args.hf!r} already holds an export ({', '.join(present)}); pass --overwrite "
                              "to replace it, or pick another folder.")
        for name in present:
            checks.output_file(os.path.join(args.hf, name), "--hf", overwrite=True, inputs=inputs)  # not the input


def main(argv: list[str] | None = None) -> dict:
    """Run the command; returns the timm kwargs written into the file ({} without --timm)."""
    args = parse_args(argv)
    check_outputs(args)
    if args.from_official is None:
        encoder = load_encoder(args.ckpt_path)
    else:
        official = from_official(args.from_official, args.heads)
        encoder = official.encoder
        keys = " ".join(f"model.{k}={v}" for k, v in official.model_keys.items())
        print(f"Continue pretraining from {args.from_official} with these model.* keys:\n"
              f"  python run_ddp.py logging.init_from={args.from_official} {keys}")
    if args.out is not None:
        save_encoder(encoder, args.out)
        print(f"Wrote {args.out} (and its .safetensors): load_encoder({args.out!r}) reads it.")
    if args.hf is not None:
        config = save_hf(encoder, args.hf)
        print(f"Wrote {args.hf}/config.json and model.safetensors: transformers IJepaConfig({config})")
        print(f"Load it: IJepaModel.from_pretrained({args.hf!r}).eval()(pixel_values=images).last_hidden_state "
              "# [B, N, D], equal to our encoder(images)")
    if args.timm is None:
        return {}
    kwargs = save_timm(encoder, args.timm)
    print(f"Wrote {args.timm}: timm VisionTransformer({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")
    print("Load it in timm (images: [B, 3, S, S], normalised with ImageNet mean/std):\n")
    print(timm_load_snippet(args.timm))
    return kwargs


def cli() -> None:
    """`ijepa-export` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()
