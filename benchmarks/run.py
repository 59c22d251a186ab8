"""`make bench`: side-by-side measurements in one process, reported as ratios (the machines are shared and
noisy, so absolute seconds mean little). Results go to benchmarks/results/<name>.json.

  python benchmarks/run.py                      # training throughput and efficiency by setting; scaling by size/batch
  python benchmarks/run.py --mnist-minutes 10   # plus the headline, aigc vs the diffusers reference on MNIST,
                                                # then FID vs NFE for every sampler on aigc's model, and memory
  python benchmarks/run.py --sampling-run runs/bench-quality-diffusion   # only FID vs NFE per sampler, on that run
  python benchmarks/run.py --gan-minutes 10     # plus the GAN recipes (seed, dcgan, stable), same budget each
  python benchmarks/run.py --ddp-minutes 2      # plus 1 vs 2 processes (torchrun) training the MNIST recipe
  python benchmarks/run.py --serve-requests 200 # plus a load test of `aigc serve` on the MNIST model
                                                # (trained by --mnist-minutes, now or in an earlier run)
  python benchmarks/run.py --compress-n 2000    # plus aigc compress's options on the MNIST diffusion model and
                                                # the seed and default GANs (trained by --mnist/--gan-minutes,
                                                # or by --compress-minutes M where they are missing)
  python benchmarks/run.py --text-decoding      # plus the time per generated token with and without the KV cache
  python benchmarks/run.py --lm-minutes 10      # plus aigc's language model vs nanoGPT's CPU recipe, same budget
  python benchmarks/run.py --lm-recipes-minutes 3   # plus the LM recipe variants aigc's default was chosen from
  python benchmarks/run.py --lm-recipes-tokens 8.9M # plus the variants of round 3, at a token budget
  python benchmarks/run.py --lm-serving         # plus a load test of `aigc serve` on the LM of --lm-minutes
                                                # (continuous batching vs one at a time, 16 and 64 clients)
  python benchmarks/run.py --finetune-minutes 3 # plus pre-train (gutenberg, 5 min) then fine-tune on the Bitext
                                                # support conversations: every weight vs LoRA, 3 min each
  python benchmarks/run.py --t2i-minutes 10,30  # plus text to image on the MNIST scenes, each budget: prompt
                                                # adherence and FID against guidance, speed, memory, a grid
  python benchmarks/run.py --quality-minutes 10 # plus the diffusion default against the GAN default (and the GAN
                                                # at half the budget), fid and fid_2, the NFE curve, the denoiser
                                                # noise level by noise level
  python benchmarks/run.py --sentiment-minutes 5  # plus PhraseBank sentiment and banking77 intents: majority,
                                                # TF-IDF + LR, aigc from scratch and on a Reuters LM
                                                # (--reuters-minutes 10): every weight, LoRA, FGM, their
                                                # ensemble; accuracy, macro-F1, ECE, perturbed accuracy;
                                                # the monitor's messages/s
  python benchmarks/run.py --assistant-minutes 5 # plus the customer-service assistant on Bitext's test split:
                                                # pre-train (gutenberg, --assistant-pretrain-minutes 10), an
                                                # index (BM25, fused), an intent classifier (3 min), generators
                                                # with and without retrieval (5 min each); intent accuracy,
                                                # chrF, ROUGE-L, placeholders, replies/s, latency, examples
  python benchmarks/run.py --recommender-minutes 10  # plus recommendation on MovieLens: a text model (gutenberg
                                                # --recommender-pretrain-minutes 10, then the movies' text 3),
                                                # aigc's recommender by ids, text and both, popularity, item-kNN,
                                                # ALS, BPR and text-only rankings; HR/NDCG@10 full, sampled and
                                                # cold, cold AUC, recommendations/s, examples
  python benchmarks/run.py --no-throughput ...  # only the comparisons asked for
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from assistant import bench_assistant
from compression import bench_compression
from data_parallel import bench_data_parallel
from finetune import bench_finetune
from gan_recipes import bench_gan
from harness import RESULTS, RUNS, machine
from image_quality import bench_image_quality
from language_model import TOKEN_VARIANTS, bench_language_model, bench_lm_recipes
from recommender import bench_recommender
from sampling import bench_sampling
from sentiment import bench_sentiment
from serving import bench_serving
from serving_lm import bench_serving_lm
from text2image import bench_text2image
from text_decoding import bench_text_decoding
from throughput import bench_scaling, bench_throughput
from time_to_quality import AIGC_DEFAULT_RUN, bench_time_to_quality


def write(name: str, results: dict) -> None:
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), **results}, indent=2, default=str) + "\n")


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="timing window per throughput setting")
    parser.add_argument("--mnist-minutes", type=float, default=0, help="also run aigc vs diffusers on MNIST")
    parser.add_argument("--mnist-n", type=int, default=2000, help="images scored per MNIST diffusion run")
    parser.add_argument("--nfe-n", type=int, default=1000, help="images scored per sampler and NFE")
    parser.add_argument("--sampling-run", default=None, help="FID vs NFE per sampler on this run (not the default's)")
    parser.add_argument("--gan-minutes", type=float, default=0, help="also compare the GAN recipes on MNIST")
    parser.add_argument("--gan-n", type=int, default=10_000, help="images scored per GAN recipe")
    parser.add_argument("--ddp-minutes", type=float, default=0, help="also compare 1 and 2 training processes")
    parser.add_argument("--serve-requests", type=int, default=0, help="also load-test the service")
    parser.add_argument("--compress-n", type=int, default=0, help="also score aigc compress's options on n images")
    parser.add_argument("--compress-minutes", type=float, default=0, help="train missing --compress-n models")
    parser.add_argument("--text-decoding", action="store_true", help="also time text decoding with/without cache")
    parser.add_argument("--lm-minutes", type=float, default=0, help="also compare aigc's LM with nanoGPT's recipe")
    parser.add_argument("--lm-recipes-minutes", type=float, default=0, help="also compare aigc LM recipe variants")
    parser.add_argument("--lm-recipes-tokens", default=None, help="also compare round 3's variants at this budget")
    parser.add_argument("--lm-serving", action="store_true", help="also load-test the LM service (needs --lm-minutes)")
    parser.add_argument("--finetune-minutes", type=float, default=0, help="also pre-train then fine-tune an LM")
    parser.add_argument("--pretrain-minutes", type=float, default=5, help="pre-training budget of --finetune-minutes")
    parser.add_argument("--t2i-minutes", default="", help="also train text2image for these budgets (10,30)")
    parser.add_argument("--t2i-n", type=int, default=500, help="scenes of each split drawn per text2image eval")
    parser.add_argument("--quality-minutes", type=float, default=0, help="also diffusion vs GAN defaults on MNIST")
    parser.add_argument("--quality-n", type=int, default=10_000, help="images scored per --quality-minutes run")
    parser.add_argument(
        "--sentiment-minutes", type=float, default=0, help="also train PhraseBank and banking77 classifiers"
    )
    parser.add_argument("--reuters-minutes", type=float, default=10, help="pre-training of --sentiment-minutes")
    parser.add_argument("--assistant-minutes", type=float, default=0, help="also train and score the assistant")
    parser.add_argument("--assistant-pretrain-minutes", type=float, default=10, help="its pre-training")
    parser.add_argument("--assistant-classifier-minutes", type=float, default=3, help="its intent classifier")
    parser.add_argument("--recommender-minutes", type=float, default=0, help="also train and score recommenders")
    parser.add_argument("--recommender-pretrain-minutes", type=float, default=10, help="their text model's")
    parser.add_argument("--recommender-text-minutes", type=float, default=3, help="its fine-tuning on movie text")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput and scaling tables")
    parser.add_argument("--data-dir", default=os.environ.get("AIGC_DATA_DIR", "../shared/data"))
    return parser


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    if args.mnist_minutes and args.sampling_run:
        parser.error("--mnist-minutes measures the sampling of the run it trains; drop --sampling-run")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.no_throughput:
        write("throughput", bench_throughput(args.seconds))
        write("scaling", bench_scaling(args.seconds))
    if args.mnist_minutes:
        write("time_to_quality", bench_time_to_quality(args.mnist_minutes, args.data_dir, args.mnist_n))
        write("sampling", bench_sampling(RUNS / AIGC_DEFAULT_RUN, args.data_dir, args.nfe_n))
    elif args.sampling_run:
        write("sampling", bench_sampling(Path(args.sampling_run), args.data_dir, args.nfe_n))
    if args.gan_minutes:
        write("gan", bench_gan(args.gan_minutes, args.data_dir, args.gan_n))
    if args.ddp_minutes:
        write("data_parallel", bench_data_parallel(args.ddp_minutes, args.data_dir))
    if args.serve_requests:
        model = RUNS / AIGC_DEFAULT_RUN
        if not model.is_dir():
            parser.error(f"{model} does not exist; run with --mnist-minutes first to train the served model")
        write("serving", bench_serving(model, args.serve_requests))
    if args.compress_n:
        write("compression", bench_compression(args.data_dir, args.compress_n, args.compress_minutes))
    if args.text_decoding:
        write("text_decoding", bench_text_decoding())
    if args.lm_recipes_minutes:
        write("lm_recipes", bench_lm_recipes(["--minutes", args.lm_recipes_minutes], args.data_dir))
    if args.lm_recipes_tokens:
        budget = ["--tokens", args.lm_recipes_tokens]
        write("lm_recipes_tokens", bench_lm_recipes(budget, args.data_dir, TOKEN_VARIANTS))
    if args.lm_minutes:
        write("language_model", bench_language_model(args.lm_minutes, args.data_dir))
    if args.lm_serving:
        write("serving_lm", bench_serving_lm(RUNS / "bench-lm"))
    if args.finetune_minutes:
        write("finetune", bench_finetune(args.pretrain_minutes, args.finetune_minutes, args.data_dir))
    if args.quality_minutes:
        write("image_quality", bench_image_quality(args.quality_minutes, args.data_dir, args.quality_n, args.mnist_n))
    if args.t2i_minutes:
        budgets = [float(m) for m in args.t2i_minutes.split(",")]
        write("text2image", bench_text2image(budgets, args.data_dir, args.t2i_n))
    if args.sentiment_minutes:
        write("sentiment", bench_sentiment(args.reuters_minutes, args.sentiment_minutes, args.data_dir))
    if args.assistant_minutes:
        minutes = (args.assistant_pretrain_minutes, args.assistant_minutes, args.assistant_classifier_minutes)
        write("assistant", bench_assistant(*minutes, args.data_dir))
    if args.recommender_minutes:
        minutes = (args.recommender_pretrain_minutes, args.recommender_text_minutes, args.recommender_minutes)
        write("recommender", bench_recommender(*minutes, args.data_dir))
    print(f"results in {RESULTS}/; python benchmarks/tables.py rewrites docs/benchmarks.md's tables from them")


if __name__ == "__main__":
    main()
