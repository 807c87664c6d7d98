"""Generator attribution: which zoo member made an image ("real" is one of the classes), or "unknown" when no
class is confident enough.

Why a separate model and not a detector option: a detector answers one question (P(fake)) and carries a
threshold calibrated for a false-positive rate; attribution is a K-way question whose "unknown" answer needs a
threshold of its own. The recipe:

1. features: the project's frequency features (`dct`: log |2-D DCT| of the luma, Frank et al. 2020, whose
   paper also attributes GAN images with them; `spectral`: the azimuthal log power spectrum, Durall et al.
   2020), and optionally `cnn`: the penultimate embedding of a fitted `CNNDetector`; several are concatenated;
2. a per-feature standardiser and a multinomial logistic regression (scikit-learn), kept as arrays
   (`scaler_mean_`, `scaler_scale_`, `coef_ [K,F]`, `intercept_ [K]`) and scored in numpy, so save/load is
   bit-identical and nothing is pickled (as `forensics.detectors.linear` does for the binary heads);
3. temperature scaling (Guo et al. 2017) fitted on validation images, so the top probability means what it
   says on data the regression was not fitted on;
4. "unknown" when either of two rules fires, both set on the same validation images with no unseen generator
   needed: (a) the top probability is below the value that keeps 97.5% of the *correctly attributed*
   validation images answered (the classes it knows are confused), or (b) the image is atypical of every
   known class: the mean squared standardised deviation of its features from the nearest class's mean
   (a diagonal Gaussian per class) is above the value 97.5% of them stay under. Rule (b) is
   what catches an unseen generator: a linear head gives no weight to the coefficients where a new trace
   lies and so answers confidently. Together the rules keep at least `coverage` (95%) of the correctly
   attributed validation images answered; wrong answers, less confident, are turned into "unknown" more
   often. `benchmarks/bench_attribution.py` measures how often the rules fire on an unseen generator (leave
   one generator out).

Defaults, from `reports/attribution/` (zoo fakes at 64 px): "dct" is the best feature set without a CNN
("spectral" alone is far behind, "dct+spectral" no better than "dct"); with a fitted CNN, "dct+cnn" trained with
`augment="postproc"` was best on validation and holds up under JPEG-75. That augmentation widens every class's
spread, which blunts rule (b) (an unseen generator is called "unknown" less often), so the default stays "none"
and the trade is the caller's.

Without validation images a stratified `val_fraction` of the training images is held out for steps 3-4.
Images are uint8 RGB `[N,H,W,3]`; they are area-resized to the training size as the detectors do.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT = "forensics-attributor/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
REAL = "real"
UNKNOWN = "unknown"
FEATURE_KINDS = ("dct", "spectral", "cnn")
_MIN_CLASS_SCALE = 0.05  # floor of a class's per-feature std (standardised units), so a near-constant feature
                         # cannot make a tiny deviation look alien


def generator_labels(rows: pd.DataFrame) -> np.ndarray:
    """Attribution target per manifest row: "real" for reals, else the generator's name.  # [N] str"""
    return np.where(rows["label"].to_numpy() == 0, REAL, rows["generator"].astype(str).to_numpy()).astype(str)


def parse_features(spec: str) -> tuple[str, ...]:
    """"dct+spectral" -> ("dct", "spectral"); unknown or repeated names are refused."""
    kinds = tuple(k.strip() for k in spec.split("+") if k.strip())
    bad = [k for k in kinds if k not in FEATURE_KINDS]
    if not kinds or bad or len(set(kinds)) != len(kinds):
        raise ValueError(f"features must be '+'-joined names from {FEATURE_KINDS}, got {spec!r}")
    return kinds


def cnn_embedding(detector: Any, images: np.ndarray) -> np.ndarray:
    """Penultimate (pre-logit) features of a fitted `CNNDetector`'s timm model.  # [N,H,W,3] -> [N,D] float32

    Uses the detector's own resizing and normalisation, so the embedding sees images as its head did."""
    return detector.predict_with_embedding(images)[1]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class GeneratorAttributor:
    """Frequency (and optionally CNN) features -> standardiser -> multinomial logistic regression -> temperature
    -> top class, or "unknown" when the top probability is below `threshold_` or the atypicality above
    `atypicality_threshold_`.

    Hyperparameters:
      features: '+'-joined from "dct", "spectral", "cnn" ("cnn" needs `cnn_detector`).
      C: inverse L2 strength of the logistic regression (small: thousands of DCT coefficients, few images).
      coverage: share of correctly attributed validation images that must stay answered (not "unknown").
      augment: a `forensics.augment` training preset; when not "none", every training (and validation) image
        is also added once more through it, so the head sees the post-processing it will meet.
      cnn_detector: directory of a saved `CNNDetector` whose embedding the "cnn" feature uses (referenced, not
        copied: its weights' sha256 is recorded and checked on use).
      val_fraction: held out of the training images for calibration when `fit` gets no validation images.
      seed: seeds the solver, the hold-out and the augmentation.
    Fitted: classes_, image_size_, scaler_mean_, scaler_scale_, coef_, intercept_, class_mean_, class_scale_,
      temperature_, threshold_, atypicality_threshold_, n_features_in_, n_train_, n_val_, val_accuracy_,
      val_unknown_rate_, val_coverage_ (share of correct validation answers kept), and cnn_weights_sha256_
      with "cnn".
    """

    def __init__(
        self,
        features: str = "dct",
        C: float = 0.05,
        coverage: float = 0.95,
        augment: str = "none",
        cnn_detector: str | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.C = C
        self.coverage = coverage
        self.augment = augment
        self.cnn_detector = cnn_detector
        self.val_fraction = val_fraction
        self.seed = seed

    # ------------------------------------------------------------------ params
    _PARAMS = ("features", "C", "coverage", "augment", "cnn_detector", "val_fraction", "seed")

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._PARAMS}

    def __repr__(self) -> str:
        return f"GeneratorAttributor({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _check_params(self) -> None:
        kinds = parse_features(self.features)
        if "cnn" in kinds and not self.cnn_detector:
            raise ValueError("features include 'cnn' but no cnn_detector directory was given")
        if not 0.0 < self.coverage <= 1.0:
            raise ValueError(f"coverage must be in (0, 1], got {self.coverage}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    # ------------------------------------------------------------------ features
    def _cnn(self):
        import forensics.detectors as registry

        if getattr(self, "_cnn_cache", None) is None:
            directory = Path(self.cnn_detector)
            digest = _sha256_file(directory / WEIGHTS_FILE) if (directory / WEIGHTS_FILE).is_file() else None
            expected = getattr(self, "cnn_weights_sha256_", None)
            if expected is not None and digest != expected:
                raise ValueError(f"{directory}: CNN weights changed since this attributor was fitted "
                                 f"(sha256 {digest} != recorded {expected})")
            det = registry.load(directory)
            if det.name != "cnn":
                raise ValueError(f"{directory} holds a {det.name!r} detector, not a CNN")
            self._cnn_cache = (det, digest)
        return self._cnn_cache

    def _features(self, images: np.ndarray) -> np.ndarray:
        """Concatenated feature blocks.  # [N,H,W,3] uint8 (training size) -> [N,F] float64"""
        from forensics.detectors.dct import log_dct_features
        from forensics.detectors.spectral import azimuthal_spectrum

        blocks = []
        for kind in parse_features(self.features):
            if kind == "dct":
                blocks.append(log_dct_features(images))  # [N,H*W]
            elif kind == "spectral":
                blocks.append(azimuthal_spectrum(images))  # [N,64]
            else:
                blocks.append(cnn_embedding(self._cnn()[0], images))  # [N,D]
        return np.concatenate(blocks, axis=1).astype(np.float64)

    def _augmented(self, images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Images plus one copy through the `augment` preset (label-blind, seeded).  # [N,...] -> [2N,...]"""
        from forensics.augment import apply_training_transform, training_transform

        if self.augment == "none" or len(images) == 0:
            return images, labels
        moved = apply_training_transform(training_transform(self.augment, seed=seed), images)
        return np.concatenate([images, moved]), np.concatenate([labels, labels])

    # ------------------------------------------------------------------ fit
    def _holdout(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stratified (train, val) index split of `val_fraction` per class (at least one per class of 2+)."""
        rng = np.random.default_rng(self.seed)
        val = []
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            if idx.size >= 2:
                val.append(idx[: max(1, int(round(self.val_fraction * idx.size)))])
        val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
        return np.setdiff1d(np.arange(labels.size), val_idx), val_idx

    def fit(self, images: np.ndarray, generator_labels: Sequence[str], val_images: np.ndarray | None = None,
            val_labels: Sequence[str] | None = None) -> "GeneratorAttributor":
        """Fit on `images [N,H,W,3]` labelled by generator name ("real" for reals), then calibrate the temperature
        and the unknown thresholds on the validation images (classes unseen in training are ignored there)."""
        from sklearn.linear_model import LogisticRegression

        from forensics.detectors.base import as_image_batch, resize_batch

        self._check_params()
        self._cnn_cache = None
        images = as_image_batch(images)
        labels = np.asarray(generator_labels).astype(str).ravel()
        if labels.size != len(images):
            raise ValueError(f"{len(images)} images but {labels.size} labels")
        classes = np.unique(labels)
        if REAL not in classes or classes.size < 2:
            raise ValueError(f"attribution needs reals (label {REAL!r}) and at least one generator, "
                             f"got {list(classes)}")
        if UNKNOWN in classes:
            raise ValueError(f"{UNKNOWN!r} is the rejection answer and cannot be a class")
        if val_images is None or val_labels is None or len(val_images) == 0:
            tr, va = self._holdout(labels)
            images, labels, val_images, val_labels = images[tr], labels[tr], images[va], labels[va]
        else:
            val_images = resize_batch(as_image_batch(val_images), images.shape[1:3])
            val_labels = np.asarray(val_labels).astype(str).ravel()
        self.image_size_ = [int(images.shape[1]), int(images.shape[2])]
        if "cnn" in parse_features(self.features):
            self.cnn_weights_sha256_ = self._cnn()[1]

        train_x, train_y = self._augmented(images, labels, self.seed)
        x = self._features(train_x)  # [N',F]
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-12] = 1.0  # constant features carry no signal; keep them at zero
        z = (x - mean) / scale
        clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000, random_state=self.seed)
        clf.fit(z, train_y)
        self.classes_ = [str(c) for c in clf.classes_]  # sorted
        coef, intercept = np.asarray(clf.coef_, np.float64), np.asarray(clf.intercept_, np.float64)
        if len(self.classes_) == 2:  # scikit-learn keeps one row for two classes: softmax([0, m]) = sigmoid(m)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
        self.scaler_mean_, self.scaler_scale_ = mean, scale
        self.coef_, self.intercept_ = coef, intercept  # [K,F], [K]
        # Per-class diagonal Gaussian of the standardised features, for the typicality test.
        idx = np.searchsorted(self.classes_, train_y)
        self.class_mean_ = np.stack([z[idx == k].mean(axis=0) for k in range(len(self.classes_))])  # [K,F]
        self.class_scale_ = np.maximum(np.stack([z[idx == k].std(axis=0) for k in range(len(self.classes_))]),
                                       _MIN_CLASS_SCALE)  # [K,F]
        self.n_features_in_ = int(x.shape[1])
        self.n_train_ = int(len(train_y))
        self.temperature_ = 1.0
        self._calibrate(*self._augmented(val_images, val_labels, self.seed + 1))
        return self

    def _calibrate(self, val_images: np.ndarray, val_labels: np.ndarray) -> None:
        """Temperature, then the two "unknown" thresholds, on validation images of the known classes. Each rule
        may reject half of the allowed (1 - coverage) of the correctly attributed ones, so together they keep
        at least `coverage` of those answered."""
        from scipy.optimize import minimize_scalar

        known = np.isin(val_labels, self.classes_)
        if not known.any():
            raise ValueError("no validation image belongs to a class seen in training")
        logits, atypical = self._raw_scores(val_images[known])  # [V,K], [V]
        target = np.searchsorted(self.classes_, val_labels[known])

        def nll(log_t: float) -> float:
            p = _softmax(logits / np.exp(log_t))
            return float(-np.mean(np.log(np.clip(p[np.arange(len(target)), target], 1e-12, None))))

        # Only softening (T >= 1): on a validation set the head separates perfectly, the NLL optimum sharpens
        # without bound and every probability would read 1.0.
        self.temperature_ = float(np.exp(minimize_scalar(nll, bounds=(0.0, 4.0), method="bounded").x))
        proba = _softmax(logits / self.temperature_)
        top, right = proba.max(axis=1), proba.argmax(axis=1) == target
        each = 1.0 - (1.0 - self.coverage) / 2.0  # share each rule keeps
        ref = right if right.any() else np.ones_like(right)  # the images whose answers are worth keeping
        self.threshold_ = float(np.quantile(top[ref], 1.0 - each, method="lower"))
        self.atypicality_threshold_ = float(np.quantile(atypical[ref], each, method="higher"))
        unknown = (top < self.threshold_) | (atypical > self.atypicality_threshold_)
        self.val_accuracy_ = float(right.mean())
        self.val_unknown_rate_ = float(unknown.mean())
        self.val_coverage_ = float((~unknown[right]).mean()) if right.any() else float("nan")
        self.n_val_ = int(known.sum())

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            from forensics.detectors.base import NotFittedError

            raise NotFittedError("GeneratorAttributor is not fitted: call fit() or load() first")

    def _raw_scores(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits before the temperature, and atypicality.  # [N,H,W,3] (training size) -> [N,K], [N]

        Atypicality = min over known classes of the mean squared standardised deviation of the features from
        that class's mean (a diagonal Gaussian's energy per feature): ~1 for an image like the class's training
        images, large when many coefficients sit where no known class put them. The linear head cannot see
        this: an unseen generator's trace lies along directions it gave no weight, so it answers confidently."""
        x = self._features(images)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"{x.shape[1]} features, attributor was fitted on {self.n_features_in_}")
        z = (x - self.scaler_mean_) / self.scaler_scale_  # [N,F]
        atypical = np.full(len(z), np.inf)
        for mu, sd in zip(self.class_mean_, self.class_scale_):
            atypical = np.minimum(atypical, np.mean(((z - mu) / sd) ** 2, axis=1))
        return z @ self.coef_.T + self.intercept_, atypical

    def _prepare(self, images: np.ndarray) -> np.ndarray:
        from forensics.detectors.base import as_image_batch, resize_batch

        self._check_fitted()
        return resize_batch(as_image_batch(images), tuple(self.image_size_))

    def scores(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(class) [N,K] over `classes_`, atypicality [N]) from one feature pass; `decide` turns them into names."""
        logits, atypical = self._raw_scores(self._prepare(images))
        return _softmax(logits / self.temperature_), atypical

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """P(class) over `classes_` per image.  # [N,H,W,3] uint8 -> [N,K] float64, rows sum to 1"""
        return self.scores(images)[0]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Most probable class name, or "unknown" (see `decide`).  # [N,H,W,3] uint8 -> [N] str"""
        return self.decide(*self.scores(images))

    def decide(self, proba: np.ndarray, atypical: np.ndarray | None = None,
               threshold: float | None = None, atypicality_threshold: float | None = None) -> np.ndarray:
        """Class names: "unknown" where the top probability is below `threshold_` or the atypicality is above
        `atypicality_threshold_` (overridable, e.g. to trace a coverage curve; None = the fitted ones).  # [N] str"""
        thr = self.threshold_ if threshold is None else threshold
        a_thr = self.atypicality_threshold_ if atypicality_threshold is None else atypicality_threshold
        names = np.asarray(self.classes_, dtype=object)[proba.argmax(axis=1)]
        unknown = proba.max(axis=1) < thr
        if atypical is not None:
            unknown |= np.asarray(atypical) > a_thr
        return np.where(unknown, UNKNOWN, names).astype(str)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write `config.json` (params, classes, scalars, versions) + `weights.safetensors` (the head's arrays)."""
        from forensics.detectors.base import versions, write_checkpoint

        self._check_fitted()
        arrays, fitted = {}, {}
        for key, value in vars(self).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray):
                arrays[key] = np.ascontiguousarray(value)
            else:
                fitted[key] = value
        config = {"format": FORMAT, "params": self.get_params(), "fitted": fitted, "versions": versions()}
        return write_checkpoint(directory, config, arrays)

    @classmethod
    def load(cls, directory: str | Path) -> "GeneratorAttributor":
        """Rebuild a saved attributor; refuses other formats, unknown hyperparameters, and (CheckpointError naming
        the file, before any tensor is used) corrupt or pickled weights and arrays whose shapes contradict the
        config."""
        from forensics.detectors.base import read_checkpoint_config, read_checkpoint_weights
        from forensics.modelfiles import CheckpointError, require_mapping

        directory = Path(directory)
        cfg_path = directory / CONFIG_FILE
        config = read_checkpoint_config(directory, FORMAT, "saved attributor", ("params", "fitted"))
        params, fitted = require_mapping(cfg_path, config, "params"), require_mapping(cfg_path, config, "fitted")
        unknown = set(params) - set(cls._PARAMS)
        if unknown:
            raise CheckpointError(f"{cfg_path}: unknown hyperparameters {sorted(unknown)}")
        odd = sorted(k for k in fitted if not (k.isidentifier() and k.endswith("_") and not k.startswith("_")))
        if odd:
            raise CheckpointError(f"{cfg_path}: fitted entries {odd[:5]} are not fitted attributes (name_)")
        tensors = read_checkpoint_weights(directory)
        att = cls(**params)
        for key, value in fitted.items():
            setattr(att, key, value)
        for key, value in tensors.items():
            if key not in _ARRAYS:
                raise CheckpointError(f"{directory / WEIGHTS_FILE}: unexpected tensor {key!r}")
            setattr(att, key, value)
        try:
            att._check_params()
        except ValueError as exc:
            raise CheckpointError(f"{cfg_path}: {exc}") from None
        att._check_checkpoint(directory / WEIGHTS_FILE)
        return att

    def _check_checkpoint(self, source: Path) -> None:
        """K classes and F features from the config; every array shaped by them (F checked against the
        frequency blocks at the fitted image size when no CNN block is involved)."""
        from forensics.detectors.dct import log_dct_features
        from forensics.detectors.spectral import azimuthal_spectrum
        from forensics.modelfiles import CheckpointError, check_finite_numbers, check_shapes, int_list

        cfg_path = source.parent / CONFIG_FILE
        classes = self.__dict__.get("classes_")
        if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)
                and REAL in classes and UNKNOWN not in classes and len(set(classes)) == len(classes)):
            raise CheckpointError(f"{cfg_path}: fitted classes_ must be 2+ distinct names including {REAL!r}, "
                                  f"got {classes!r:.200}")
        h, w = int_list(cfg_path, self.__dict__.get("image_size_"), "fitted image_size_", 2, high=4096)
        n = self.__dict__.get("n_features_in_")
        if not isinstance(n, int) or n < 1:
            raise CheckpointError(f"{cfg_path}: fitted n_features_in_ must be a positive integer, got {n!r}")
        kinds = parse_features(self.features)
        if "cnn" not in kinds:
            blank = np.zeros((1, h, w, 3), np.uint8)
            expected = sum((log_dct_features(blank) if k == "dct" else azimuthal_spectrum(blank)).shape[1]
                           for k in kinds)
            if expected != n:
                raise CheckpointError(f"{cfg_path}: n_features_in_ is {n} but features {self.features!r} at "
                                      f"{h}x{w} give {expected}")
        for key in ("temperature_", "threshold_", "atypicality_threshold_"):
            value = self.__dict__.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise CheckpointError(f"{cfg_path}: fitted {key} must be a number, got {value!r}")
            check_finite_numbers(cfg_path, value, f"fitted {key}")
        if self.temperature_ <= 0:
            raise CheckpointError(f"{cfg_path}: fitted temperature_ must be positive, got {self.temperature_}")
        k = len(classes)
        arrays = {key: v for key, v in vars(self).items() if isinstance(v, np.ndarray)}
        check_shapes(source, {"scaler_mean_": (n,), "scaler_scale_": (n,), "coef_": (k, n), "intercept_": (k,),
                              "class_mean_": (k, n), "class_scale_": (k, n)}, arrays,
                     f"an attributor of {k} classes on {n} features")
        for key in ("scaler_scale_", "class_scale_"):
            if not (arrays[key] > 0).all():
                raise CheckpointError(f"{source}: tensor {key!r} has entries <= 0 (it is divided by)")


_ARRAYS = ("scaler_mean_", "scaler_scale_", "coef_", "intercept_", "class_mean_", "class_scale_")


# ------------------------------------------------------------------------------------------------ metrics


def attribution_metrics(true: Sequence[str], pred: Sequence[str], classes: Sequence[str], n_boot: int = 0,
                        seed: int = 0) -> dict[str, Any]:
    """Open-set attribution scores.

    `classes` are the classes the model knows; a true label outside them (an unseen generator) is answered
    correctly only by "unknown". Returns:
      n, accuracy (every sample; "unknown" is wrong for a known class), accuracy_answered (known classes, among
      samples not called unknown), unknown_rate (all samples), unknown_rate_by_class, per_class_recall (share of
      each true class given its right answer), confusion = {rows: true classes (known first, then unseen ones),
      cols: classes + "unknown", counts [R,C]}; with `n_boot` > 0 also accuracy_ci, a 95% percentile bootstrap
      interval over samples (seeded).
    """
    true = np.asarray(true).astype(str).ravel()
    pred = np.asarray(pred).astype(str).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"true and pred differ in length: {true.size} vs {pred.size}")
    classes = [str(c) for c in classes]
    rows = classes + sorted(set(true) - set(classes))
    cols = classes + [UNKNOWN]
    bad = sorted(set(pred) - set(cols))
    if bad:
        raise ValueError(f"predictions {bad} are neither classes nor {UNKNOWN!r}")
    counts = np.zeros((len(rows), len(cols)), dtype=np.int64)
    np.add.at(counts, ([rows.index(t) for t in true], [cols.index(p) for p in pred]), 1)
    right_answer = np.where(np.isin(true, classes), true, UNKNOWN)
    correct = pred == right_answer
    known = np.isin(true, classes)
    answered = known & (pred != UNKNOWN)
    per_class, unknown_by = {}, {}
    for r in rows:
        sel = true == r
        if sel.any():
            per_class[r] = float(correct[sel].mean())
            unknown_by[r] = float((pred[sel] == UNKNOWN).mean())
    out = {
        "n": int(true.size),
        "accuracy": float(correct.mean()) if true.size else float("nan"),
        "accuracy_answered": float(correct[answered].mean()) if answered.any() else float("nan"),
        "unknown_rate": float((pred == UNKNOWN).mean()) if true.size else float("nan"),
        "unknown_rate_by_class": unknown_by,
        "per_class_recall": per_class,
        "confusion": {"rows": rows, "cols": cols, "counts": counts.tolist()},
    }
    if n_boot > 0 and true.size:
        draws = np.random.default_rng(seed).integers(0, true.size, size=(n_boot, true.size))  # [B,N]
        boot = correct[draws].mean(axis=1)
        out["accuracy_ci"] = [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]
    return out


def plot_confusion_matrix(metrics: dict[str, Any], path: str | Path, title: str = "Generator attribution") -> Path:
    """Confusion-matrix PNG of `attribution_metrics` output: colour = share of the true class (row), text = count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forensics.data.media import write_bytes_atomic

    conf = metrics["confusion"]
    counts = np.asarray(conf["counts"], dtype=np.float64)  # [R,C]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    fig, ax = plt.subplots(figsize=(1.0 * len(conf["cols"]) + 2.2, 0.75 * len(conf["rows"]) + 1.6))
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(conf["cols"])), conf["cols"], rotation=30, ha="right")
    ax.set_yticks(range(len(conf["rows"])), conf["rows"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {metrics['accuracy']:.3f}, unknown {metrics['unknown_rate']:.3f}", fontsize=10)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())
    return path


def evaluate_attributor(attributor: GeneratorAttributor, images: np.ndarray, true: Sequence[str],
                        sample_ids: Sequence[str], perturbations: Sequence[str] = (), seed: int = 0,
                        n_boot: int = 0) -> dict[str, dict[str, Any]]:
    """`attribution_metrics` per perturbation ("none" = clean, then each of `perturbations`), each image perturbed
    with its id-derived seed exactly as `forensics.evaluate.score_rows` does for the detectors."""
    from forensics.augment import CLEAN, perturb_batch, stable_seed

    out = {}
    for pert in (CLEAN, *[p for p in perturbations if p != CLEAN]):
        batch = images
        if pert != CLEAN:
            batch, _ = perturb_batch(images, pert, [stable_seed(str(s), seed) for s in sample_ids])
        out[pert] = attribution_metrics(true, attributor.predict(batch), attributor.classes_, n_boot, seed)
    return out


def fit_and_measure(images: np.ndarray, labels: Sequence[str], test_images: np.ndarray, test_labels: Sequence[str],
                    path: str | Path, seed: int = 0, val_images: np.ndarray | None = None,
                    val_labels: Sequence[str] | None = None) -> tuple["GeneratorAttributor", dict[str, Any]]:
    """The attributor `forensics detect bench` and `forensics detect release` ship: DCT + spectrum features (no
    model of its own to reference), trained through the `postproc` chain; saved to `path` (reloaded from there
    when a run already made it) and measured open-set on the test images, with a bootstrap CI."""
    path = Path(path)
    if (path / CONFIG_FILE).exists():
        attributor = GeneratorAttributor.load(path)
    else:
        attributor = GeneratorAttributor(features="dct+spectral", augment="postproc", seed=seed).fit(
            images, labels, val_images, val_labels)
        attributor.save(path)
    metrics = attribution_metrics(test_labels, attributor.predict(test_images), attributor.classes_, n_boot=200,
                                  seed=seed)
    return attributor, metrics
