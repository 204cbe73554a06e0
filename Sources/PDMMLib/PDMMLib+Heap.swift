// The heap bound pdmm_init_heap_bytes reports.

/// The bounded heap pdmm_init takes (the run's objects, its per-layer arrays of views,
/// the parsed network): an upper bound from the layer count, the stages and the network
/// text, checked against glibc's usable bytes by tools/board/examples/pdmm_api_test.c
/// (measured 2.9-3.1 KB for 2 layers, 5.3-5.9 KB for 7).
enum LibHeap {
    static func bound(_ cfg: LibConfig, _ plan: MemoryPlan) -> Int {
        2048 + 768 * (cfg.shape.layerCount + 1) + 64 * plan.stages.count + 2 * cfg.shape.spec.description.utf8.count
    }
}
