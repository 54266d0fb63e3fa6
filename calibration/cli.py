"""`python -m calibration {act-scales,export,ppl,demo,convert-torch-int}`; flag names of the original SmoothQuant scripts work too."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-name", "--model_name", "--model-path", "--model_path", dest="model", required=True,
                   help="Hugging Face model directory (or Hub name when the Hub is reachable)")
    p.add_argument("--dtype", choices=list(DTYPES), default="auto", help="model dtype (default: the checkpoint's)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")


def _data_args(p: argparse.ArgumentParser, samples: int, seq_len: int) -> None:
    p.add_argument("--dataset-path", "--dataset_path", dest="dataset", default=None,
                   help="local .txt/.jsonl/.json/.parquet file or directory, a Hub data set name, or 'builtin'")
    p.add_argument("--text-field", default="text", help="column holding the text (jsonl/parquet)")
    p.add_argument("--num-samples", "--num_samples", "--n_samples", "--n-samples", dest="num_samples", type=int,
                   default=samples, help=f"number of token blocks (default {samples})")
    p.add_argument("--seq-len", "--seq_len", dest="seq_len", type=int, default=seq_len,
                   help=f"tokens per block (default {seq_len})")
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=8)


def _quant_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--act_scales_path", "--act-scales-path", dest="act_scales", default=None,
                   help="activation scales .pt from `act-scales` (or the original project); computed if omitted")
    p.add_argument("--alpha", default="0.5", help="migration strength in [0, 1], 'auto' (per-layer search), "
                   "or a JSON file of per-layer alphas")
    p.add_argument("--weight-granularity", "--weight_quant", dest="weight_granularity",
                   choices=["per_channel", "per_tensor"], default="per_channel")
    p.add_argument("--activation-granularity", "--act_quant", dest="activation_granularity",
                   choices=["per_token", "per_tensor"], default="per_token")
    p.add_argument("--activation-scheme", choices=["dynamic", "static"], default="dynamic",
                   help="static stores a calibrated input scale (needs --activation-granularity per_tensor)")
    p.add_argument("--asymmetric", action="store_true", help="asymmetric (zero-point) dynamic per-token activations")
    p.add_argument("--smooth-all", action="store_true",
                   help="also smooth o_proj/down_proj/fc2 where the architecture allows it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m calibration", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("act-scales", help="per-channel input abs-max of every linear, saved as a .pt dict")
    _model_args(p)
    _data_args(p, 512, 512)
    p.add_argument("--output-path", "--output_path", dest="output", required=True, help="the .pt file to write")

    p = sub.add_parser("export", help="smooth, quantize and write a smoothquant checkpoint directory")
    _model_args(p)
    _data_args(p, 128, 512)
    _quant_args(p)
    p.add_argument("--output-path", "--output_path", dest="output", required=True, help="checkpoint directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--smooth", dest="smooth", action="store_true", default=True, help="smooth (the default)")
    p.add_argument("--no-smooth", dest="smooth", action="store_false", help="naive W8A8: quantize without smoothing")
    p.add_argument("--quantize", action="store_true", help="accepted for compatibility: export always quantizes")
    p.add_argument("--ignore", nargs="*", default=[], help="extra module names to keep in the model dtype")

    p = sub.add_parser("ppl", help="perplexity: float vs naive W8A8 vs SmoothQuant W8A8 (simulated)")
    _model_args(p)
    _data_args(p, 40, 512)
    _quant_args(p)
    p.add_argument("--calib-dataset-path", dest="calib_dataset", default=None,
                   help="data for act scales / alpha search when --act_scales_path is not given (default: "
                        "--dataset-path)")
    p.add_argument("--smooth", action="store_true", help="with --quantize or alone: evaluate only this one setup")
    p.add_argument("--quantize", action="store_true", help="with or without --smooth: evaluate only this setup")

    p = sub.add_parser("demo", help="tiny outlier model: calibrate, export, print the accuracy table")
    p.add_argument("--output-path", "--output_path", dest="output", default="smoothquant-demo")
    p.add_argument("--arch", default="llama")
    p.add_argument("--train-steps", type=int, default=0,
                   help="train the tiny model this many steps first (makes perplexity meaningful; slower)")
    p.add_argument("--overwrite", action="store_true")
    p = sub.add_parser("convert-torch-int", help="convert an original mit-han-lab/smoothquant (torch-int Int8OPT) "
                       "checkpoint into a smoothquant checkpoint (docs/torch_int.md)")
    p.add_argument("src", help="torch-int Int8OPT checkpoint directory")
    p.add_argument("dst", help="output directory")
    p.add_argument("--overwrite", action="store_true")
    return parser


def _load_model(args: argparse.Namespace):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from calibration.act_scales import default_device

    device = torch.device(args.device) if args.device else default_device()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=DTYPES[args.dtype]).to(device).eval()
    return model, AutoTokenizer.from_pretrained(args.model)


def _blocks(args: argparse.Namespace, tokenizer, source: str | None):
    from calibration.data import HOW_TO, DataError, load_texts, token_blocks

    if source is None:
        raise DataError(f"no calibration/evaluation data given: {HOW_TO}")
    texts = load_texts(source, text_field=args.text_field)
    return token_blocks(tokenizer, texts, num_samples=args.num_samples, seq_len=args.seq_len)


def _alpha(value: str):
    from calibration.alpha_search import load_alphas

    if value == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        if os.path.isfile(value):
            return load_alphas(value)
        raise SystemExit(f"error: --alpha must be a number in [0, 1], 'auto' or a JSON file, got {value!r}") from None


def _scales(args: argparse.Namespace, model, tokenizer, blocks):
    from calibration.act_scales import collect_act_scales, load_act_scales

    if args.act_scales:
        return load_act_scales(args.act_scales)
    return collect_act_scales(model, tokenizer, blocks, batch_size=args.batch_size)


def cmd_act_scales(args: argparse.Namespace) -> None:
    from calibration.act_scales import collect_act_scales, save_act_scales

    model, tok = _load_model(args)
    blocks = _blocks(args, tok, args.dataset)
    scales = collect_act_scales(model, tok, blocks, batch_size=args.batch_size)
    save_act_scales(scales, args.output)
    print(f"saved activation scales of {len(scales)} linear layers ({len(blocks)} x {blocks.shape[1]} tokens) "
          f"to {args.output}")


def cmd_export(args: argparse.Namespace) -> None:
    from calibration.export import check_output_dir, export_checkpoint, quantization_config
    from calibration.smooth import check_alpha

    # fail on bad options before the slow part
    alpha = _alpha(args.alpha)
    if isinstance(alpha, float):
        check_alpha(alpha)
    quantization_config(alpha=0.0, weight_granularity=args.weight_granularity,
                        activation_granularity=args.activation_granularity,
                        activation_dynamic=args.activation_scheme == "dynamic",
                        activation_symmetric=not args.asymmetric, ignored_modules=args.ignore)
    check_output_dir(Path(args.output).expanduser().resolve(), args.overwrite)
    model, tok = _load_model(args)
    blocks = _blocks(args, tok, args.dataset) if (args.act_scales is None or alpha == "auto") else None
    scales = _scales(args, model, tok, blocks)
    out = export_checkpoint(
        model, tok, scales, args.output, alpha=alpha, weight_granularity=args.weight_granularity,
        activation_granularity=args.activation_granularity, activation_dynamic=args.activation_scheme == "dynamic",
        activation_symmetric=not args.asymmetric, calib_data=blocks, overwrite=args.overwrite, smooth=args.smooth,
        smooth_all=args.smooth_all, ignored_modules=args.ignore)
    print(f"wrote smoothquant checkpoint to {out}")


def cmd_ppl(args: argparse.Namespace) -> None:
    from calibration.alpha_search import search_alphas
    from calibration.ppl import compare_perplexity, perplexity, simulated_copy

    alpha = _alpha(args.alpha)
    if isinstance(alpha, float):
        from calibration.smooth import check_alpha
        check_alpha(alpha)
    model, tok = _load_model(args)
    evals = _blocks(args, tok, args.dataset)
    need_scales = args.smooth or not args.quantize
    calib = _blocks(args, tok, args.calib_dataset or args.dataset) if need_scales and (
        args.act_scales is None or args.alpha == "auto") else None
    scales = _scales(args, model, tok, calib) if need_scales else None
    act_quant = "per_token_asymmetric" if args.asymmetric else args.activation_granularity
    if alpha == "auto" and need_scales:
        alpha = search_alphas(model, scales, calib, weight_granularity=args.weight_granularity,
                              activation_granularity=args.activation_granularity,
                              activation_symmetric=not args.asymmetric)
    if args.smooth or args.quantize:  # the original ppl_eval.py: one configuration
        from calibration.smooth import smooth_model

        m = model
        if args.smooth:
            smooth_model(m, scales, alpha)
        if args.quantize:
            m = simulated_copy(m, None, None, weight_quant=args.weight_granularity, act_quant=act_quant)
        name = ("SmoothQuant " if args.smooth else "") + ("W8A8" if args.quantize else "smoothed float")
        results = {name: perplexity(m, evals, args.batch_size)}
    else:
        results = compare_perplexity(model, scales, evals, alpha, weight_quant=args.weight_granularity,
                                     act_quant=act_quant, batch_size=args.batch_size)
    print(f"perplexity on {evals.numel()} tokens ({len(evals)} x {evals.shape[1]}):")
    for name, value in results.items():
        print(f"  {name:<20} {value:.3f}")


def cmd_demo(args: argparse.Namespace) -> None:
    from calibration.demo import run_demo

    run_demo(args.output, arch=args.arch, train_steps=args.train_steps, overwrite=args.overwrite)


def cmd_convert_torch_int(args: argparse.Namespace) -> None:
    from calibration.torch_int import convert_torch_int

    print(convert_torch_int(args.src, args.dst, overwrite=args.overwrite))


COMMANDS = {"act-scales": cmd_act_scales, "export": cmd_export, "ppl": cmd_ppl, "demo": cmd_demo,
            "convert-torch-int": cmd_convert_torch_int}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_grad_enabled(args.command == "demo")
    try:
        COMMANDS[args.command](args)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
