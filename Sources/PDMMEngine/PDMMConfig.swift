/// How the Error Group threshold I_threshold is chosen.
public enum ErrorThreshold: Equatable {
    /// d_i > value (a cross-entropy, in nats).
    case value(Double)
    /// The threshold that puts this fraction of all training samples D into E
    /// (the document reports 5-12 %): the (fraction x |D|)-th largest deviation.
    case fraction(Double)
    /// Measured (the default, p = 0.95): d_i above the p-quantile of G_Ideal's own
    /// deviations on the held-out part of D_Ideal, samples as certain as D_Ideal that
    /// G_Ideal never trained on. A sample of D_new deviating more than 95 % of those
    /// is one the ideal model does not explain; |E| is then an outcome, not a setting.
    case idealQuantile(Double)
}

/// How D_Ideal, the high-certainty data G_Ideal learns from, is chosen.
public enum IdealSelection: Equatable {
    /// The samples the data flags as verified (a `--verified-column`).
    case verified
    /// Confident learning (Northcutt et al., 2021): k-fold out-of-fold predicted
    /// probabilities of each sample's own label from small bp runs; per class,
    /// the `idealFraction` with the highest probability.
    case confident
    /// A seeded, class-stratified random fraction (for comparison).
    case random
}

/// Which model Information Value Calibration updates.
public enum IVCTarget: Equatable {
    /// Theorem 1 of the document: G_Ideal's trainable (top k) layers,
    /// G_Ideal,new = G_Ideal,old - alpha U_E (beta grad L_BP + gamma grad L_Delta).
    case ideal
    /// The earlier variant: the error-aware copy being trained on E.
    case errorAwareCopy
}

/// The PDMM method's settings (names as in the research document; see the README).
public struct PDMMConfig: Equatable {
    /// k: Ideal learning uses blockwise(k); defect learning trains the top k layers.
    public var k = 2
    /// How D_Ideal is chosen; nil = `verified` when the data has a verified column, else `confident`.
    public var idealSelection: IdealSelection? = nil
    /// Fraction of each class taken into D_Ideal (confident and random selection).
    public var idealFraction = 0.20
    /// Folds of confident selection (k-fold out-of-fold probabilities).
    public var selectionFolds = 3
    /// Epochs of each fold's bp run in confident selection.
    public var selectionEpochs = 10
    /// Fraction of D_Ideal (per class, seeded) held out from G_Ideal's training: the
    /// measured threshold and IVC's dedicated BP validation pass use it.
    public var holdoutFraction = 0.20
    /// Train G_Ideal with full backprop instead of blockwise(k).
    public var idealBackprop = false
    public var idealEpochs = 30
    public var defectEpochs = 30
    public var threshold = ErrorThreshold.idealQuantile(0.95)
    /// IVC runs every `ivcPeriod` defect-learning steps (0 = never).
    public var ivcPeriod = 10
    public var ivcTarget = IVCTarget.ideal
    public var alpha = 0.5
    public var beta = 1.0
    public var gamma = 0.1
    /// 0 <= lambdaMax < 1.
    public var lambdaMax = 0.5
    public var batch = 32
    public var learningRate = 0.05
    public var optimizer = OptimizerKind.sgd
    public var seed: UInt64 = 1
    /// Worker threads of every trainer's kernels (`TrainingOptions.threads`); the results are the same for every count.
    public var threads = 1
    public init() {}

    public func validate(layers L: Int) throws(EngineError) {
        if k < 1 || k > L { throw .invalidK(k: k, layers: L) }
        if !(idealFraction > 0 && idealFraction < 1) {
            throw .invalidParameter(name: "idealFraction", reason: "must satisfy 0 < idealFraction < 1")
        }
        if !(holdoutFraction > 0 && holdoutFraction < 1) {
            throw .invalidParameter(name: "holdoutFraction", reason: "must satisfy 0 < holdoutFraction < 1")
        }
        if selectionFolds < 2 || selectionFolds > 20 {
            throw .invalidParameter(name: "selectionFolds", reason: "must lie in 2...20")
        }
        if selectionEpochs < 0 { throw .invalidParameter(name: "selectionEpochs", reason: "must be >= 0") }
        _ = try DualSystem.validate(lambdaMax: lambdaMax)
        switch threshold {
        case .value(let v):
            if !(v >= 0 && v < 32768) { throw .invalidParameter(name: "threshold", reason: "must be in [0, 32768)") }
        case .fraction(let f):
            if !(f > 0 && f < 1) { throw .invalidParameter(name: "error fraction", reason: "must satisfy 0 < f < 1") }
        case .idealQuantile(let q):
            if !(q > 0 && q < 1) { throw .invalidParameter(name: "threshold quantile", reason: "must satisfy 0 < q < 1") }
        }
        if ivcPeriod < 0 { throw .invalidParameter(name: "ivcPeriod", reason: "must be >= 0") }
        if !(alpha >= 0 && beta >= 0 && gamma >= 0) {
            throw .invalidParameter(name: "alpha, beta, gamma", reason: "must be >= 0")
        }
        if alpha * beta >= 1 || alpha * gamma >= 1 {
            throw .invalidParameter(name: "alpha*beta, alpha*gamma", reason: "must be < 1 (IVC rates are Q0.32)")
        }
    }
}
