"""Pure maths of the LR range test: ramps, smoothing, stop rule, suggestions, interval.

Numbers in, numbers out (numpy only: no torch, no I/O).

    lr_ramp(start_lr, end_lr, num_iter, mode="exp")   LRs of the sweep
    diverged(loss, smoothed, best_smoothed, factor)   stop rule during the sweep
    MIN_STOP_POINTS                                   points before the rise test applies
    ema(losses, beta)  smooth(losses, window)         causal / lag-free smoothing
    SUGGESTIONS, get_suggestion(name)                 steep, minimum, valley, slide
    recommend(lrs, losses) -> Recommendation          lrscout's LR and interval
    analyse(lrs, losses) -> Analysis                  all of the above for one curve
"""

from lrscout.curve.analysis import Analysis, analyse
from lrscout.curve.clean import MIN_POINTS, clean_curve
from lrscout.curve.interval import Recommendation, recommend
from lrscout.curve.ramps import RAMPS, lr_ramp
from lrscout.curve.smoothing import clip_blowup, default_window, ema, smooth
from lrscout.curve.stop import MIN_STOP_POINTS, diverged
from lrscout.curve.suggest import (
    SUGGESTIONS,
    Suggestion,
    get_suggestion,
    suggest_minimum,
    suggest_slide,
    suggest_steep,
    suggest_valley,
)

__all__ = [
    "MIN_POINTS",
    "MIN_STOP_POINTS",
    "RAMPS",
    "SUGGESTIONS",
    "Analysis",
    "Recommendation",
    "Suggestion",
    "analyse",
    "clean_curve",
    "clip_blowup",
    "default_window",
    "diverged",
    "ema",
    "get_suggestion",
    "lr_ramp",
    "recommend",
    "smooth",
    "suggest_minimum",
    "suggest_slide",
    "suggest_steep",
    "suggest_valley",
]
