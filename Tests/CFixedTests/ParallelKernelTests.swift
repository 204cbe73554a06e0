// ParallelKernelTests.swift -- the q16_par_ kernels equal their serial kernels bit for bit
// (values, status, saturation counts) for teams of 1...4 workers, on random and extreme
// inputs and odd sizes (1 row, fewer rows than workers, primes).
import CFixed
import XCTest

/// A q16_team in 64-byte aligned memory, started for `threads` workers.
final class TestTeam {
    let memory = UnsafeMutableRawPointer.allocate(byteCount: q16_team_size(), alignment: 64)
    var team: OpaquePointer { OpaquePointer(memory) }
    init(_ threads: Int) {
        precondition(q16_team_init(OpaquePointer(memory), Int32(threads)) == Q16_OK, "team of \(threads)")
    }
    deinit {
        q16_team_destroy(team)
        memory.deallocate()
    }
}

final class ParallelKernelTests: XCTestCase {
    /// The teams of 1...4 workers every test runs with (nil: the caller alone).
    let teams: [TestTeam?] = [nil, TestTeam(1), TestTeam(2), TestTeam(3), TestTeam(4)]

    func testTeamInitRejectsBadCountsAndRunsEveryWorker() {
        let t = TestTeam(1)
        XCTAssertEqual(q16_team_init(t.team, 0), Q16_ERR_SIZE)
        XCTAssertEqual(q16_team_init(t.team, Int32(Q16_TEAM_MAX) + 1), Q16_ERR_SIZE)
        XCTAssertEqual(q16_team_init(nil, 2), Q16_ERR_NULL)
        XCTAssertEqual(q16_team_count(nil), 1)
        for team in teams {
            let n = Int(q16_team_count(team?.team))
            // each worker marks its slot 1000 times: every slot once per run, no slot twice
            var hits = [Int32](repeating: 0, count: 16)
            hits.withUnsafeMutableBufferPointer { hp in
                for _ in 0 ..< 1000 {
                    q16_team_run(team?.team, { ctx, w, nw in
                        let p = ctx!.assumingMemoryBound(to: Int32.self)
                        p[Int(w)] += 1
                        if w == 0 { p[15] = nw }  // one writer: the slots are disjoint
                    }, hp.baseAddress)
                }
            }
            XCTAssertEqual(Array(hits[0 ..< n]), [Int32](repeating: 1000, count: n))
            XCTAssertEqual(hits[n ..< 15].reduce(0, +), 0)
            XCTAssertEqual(hits[15], Int32(n))
        }
    }

    /// gemm_nt (packed scratch and unpacked) and gemm_nn at odd sizes and spreads.
    func testGemmsEqualSerialForEveryTeam() {
        var rng = SplitMix64(seed: 0x7E41)
        let sizes = [(1, 300, 200), (3, 257, 131), (5, 64, 128), (37, 131, 67), (64, 256, 784), (130, 10, 33)]
        for (m, n, k) in sizes {
            for spread in [Spread.unit, .full, .mixed] {
                let A = values(m * k, spread, &rng), B = values(n * k, spread, &rng), bias = values(n, spread, &rng)
                let Bnn = values(k * n, spread, &rng)
                let per = (q16_gemm_nt_buffer_size(Int32(m), Int32(n), Int32(k)) + 7) / 8 * 8
                var want = [Int32](repeating: 0, count: m * n), wantNN = want
                var satNT: UInt64 = 0, satNN: UInt64 = 0
                var scratch = [Int32](repeating: 0, count: max(per / 4, 1))
                XCTAssertEqual(q16_gemm_nt(&want, &scratch, A, B, bias, Int32(m), Int32(n), Int32(k), &satNT), Q16_OK)
                XCTAssertEqual(q16_gemm_nn(&wantNN, A, Bnn, Int32(m), Int32(n), Int32(k), &satNN), Q16_OK)
                for team in teams {
                    let w = Int(q16_team_count(team?.team))
                    for packed in [true, false] {
                        var got = [Int32](repeating: 7, count: m * n)
                        var ws = [Int32](repeating: 0, count: max(w * per / 4, 1))
                        var sat: UInt64 = 0
                        let s = ws.withUnsafeMutableBufferPointer { sp in
                            q16_par_gemm_nt(team?.team, &got, packed ? sp.baseAddress : nil, per, A, B, bias,
                                            Int32(m), Int32(n), Int32(k), &sat)
                        }
                        XCTAssertEqual(s, Q16_OK)
                        XCTAssertEqual(got, want, "gemm_nt \(m)x\(n)x\(k) \(spread) workers \(w) packed \(packed)")
                        XCTAssertEqual(sat, satNT, "gemm_nt saturations \(m)x\(n)x\(k) \(spread) workers \(w)")
                    }
                    var got = [Int32](repeating: 7, count: m * n)
                    var sat: UInt64 = 0
                    XCTAssertEqual(q16_par_gemm_nn(team?.team, &got, A, Bnn, Int32(m), Int32(n), Int32(k), &sat), Q16_OK)
                    XCTAssertEqual(got, wantNN, "gemm_nn \(m)x\(n)x\(k) \(spread) workers \(w)")
                    XCTAssertEqual(sat, satNN)
                }
            }
        }
        // errors of the whole call, as the serial kernel's
        var c = [Int32](repeating: 0, count: 64 * 64)
        let a = [Int32](repeating: 1, count: 64 * 64)
        XCTAssertEqual(q16_par_gemm_nn(teams[2]!.team, &c, a, nil, 64, 64, 64, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_par_gemm_nt(teams[2]!.team, &c, nil, 0, a, a, nil, 0, 64, 64, nil), Q16_ERR_SIZE)
        c.withUnsafeMutableBufferPointer { cp in
            XCTAssertEqual(q16_par_gemm_nn(teams[2]!.team, cp.baseAddress, cp.baseAddress, a, 64, 64, 64, nil),
                           Q16_ERR_OVERLAP)
        }
    }

    /// The fused SGD and Riemannian updates (both metrics) split by rows of W.
    func testFusedUpdatesEqualSerialForEveryTeam() {
        var rng = SplitMix64(seed: 0x0D17)
        let sizes = [(32, 1, 500), (64, 3, 300), (17, 131, 67), (128, 256, 256), (7, 29, 1031)]
        for (batch, m, n) in sizes {
            for spread in [Spread.unit, .full, .edges] {
                let dY = values(batch * m, spread, &rng), X = values(batch * n, spread, &rng)
                let W0 = values(m * n, spread, &rng), b0 = values(m, spread, &rng)
                let phi0 = values(m * n + m, .unit, &rng).map { abs($0) }
                let lr = rate(&rng), gscale = rate(&rng), rho = rate(&rng)
                let alpha = Int32(rng.next() % (8 << 16))
                let seed = rng.next(), counter = rng.next() >> 8
                let per = 8 * n
                var scratch = [Int64](repeating: 0, count: n)
                var wantW = W0, wantB = b0, wantSat: UInt64 = 0
                XCTAssertEqual(q16_update_outer_sr(&wantW, &wantB, &scratch, dY, X, lr, Int32(batch), Int32(m), Int32(n),
                                                   seed, counter, &wantSat), Q16_OK)
                var rW: [[Int32]] = [], rB: [[Int32]] = [], rPhi: [[Int32]] = [], rSat: [UInt64] = []
                for kind in [Q16_PHI_GRAD_SQUARED, Q16_PHI_WEIGHT_ABS] {
                    var w = W0, b = b0, phi = phi0, sat: UInt64 = 0
                    XCTAssertEqual(q16_update_outer_riemannian_sr(&w, &b, &phi, &scratch, dY, X, lr, gscale, alpha, rho,
                                                                  kind, Int32(batch), Int32(m), Int32(n), seed, counter,
                                                                  &sat), Q16_OK)
                    rW.append(w); rB.append(b); rPhi.append(phi); rSat.append(sat)
                }
                for team in teams {
                    let workers = Int(q16_team_count(team?.team))
                    var ws = [Int64](repeating: 0, count: workers * n)
                    var w = W0, b = b0, sat: UInt64 = 0
                    XCTAssertEqual(q16_par_update_outer_sr(team?.team, &w, &b, &ws, per, dY, X, lr, Int32(batch),
                                                           Int32(m), Int32(n), seed, counter, &sat), Q16_OK)
                    let what = "\(batch)x\(m)x\(n) \(spread) workers \(workers)"
                    XCTAssertEqual(w, wantW, "update_outer_sr W " + what)
                    XCTAssertEqual(b, wantB, "update_outer_sr bias " + what)
                    XCTAssertEqual(sat, wantSat, "update_outer_sr saturations " + what)
                    for (i, kind) in [Q16_PHI_GRAD_SQUARED, Q16_PHI_WEIGHT_ABS].enumerated() {
                        var w = W0, b = b0, phi = phi0, sat: UInt64 = 0
                        XCTAssertEqual(q16_par_update_outer_riemannian_sr(team?.team, &w, &b, &phi, &ws, per, dY, X, lr,
                                                                          gscale, alpha, rho, kind, Int32(batch),
                                                                          Int32(m), Int32(n), seed, counter, &sat), Q16_OK)
                        XCTAssertEqual(w, rW[i], "riemannian W kind \(i) " + what)
                        XCTAssertEqual(b, rB[i], "riemannian bias kind \(i) " + what)
                        XCTAssertEqual(phi, rPhi[i], "riemannian phi kind \(i) " + what)
                        XCTAssertEqual(sat, rSat[i], "riemannian saturations kind \(i) " + what)
                    }
                }
            }
        }
        // the rows kernel refuses a range outside 0...m; a scratch part overlapping W is refused
        var w = [Int32](repeating: 0, count: 64 * 600), s = [Int64](repeating: 0, count: 600)
        let y = [Int32](repeating: 1, count: 64 * 64), x = [Int32](repeating: 1, count: 64 * 600)
        XCTAssertEqual(q16_update_outer_sr_rows(&w, nil, &s, y, x, 1, 64, 64, 600, 3, 65, 1, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_outer_sr_rows(&w, nil, &s, y, x, 1, 64, 64, 600, 5, 4, 1, 0, nil), Q16_ERR_SIZE)
        let before = w
        w.withUnsafeMutableBufferPointer { wp in
            s.withUnsafeMutableBufferPointer { sp in
                // worker 1's part (stride: W's distance from the scratch) would be W itself
                let stride = UnsafeRawPointer(wp.baseAddress!) - UnsafeRawPointer(sp.baseAddress!)
                if stride > 0 && stride % 8 == 0 {
                    XCTAssertEqual(q16_par_update_outer_sr(teams[2]!.team, wp.baseAddress, nil, sp.baseAddress, stride,
                                                           y, x, 1, 64, 64, 600, 1, 0, nil), Q16_ERR_OVERLAP)
                }
            }
        }
        XCTAssertEqual(w, before)
        // a stride below one worker's row of 8 n bytes would make the workers' parts overlap
        XCTAssertEqual(q16_par_update_outer_sr(teams[2]!.team, &w, nil, &s, 8 * 599, y, x, 1, 64, 64, 600, 1, 0, nil),
                       Q16_ERR_SIZE)
        XCTAssertEqual(w, before)
    }

    /// Convolution forward and input gradient split by samples (scratch per worker, or none).
    func testConvolutionsEqualSerialForEveryTeam() {
        var rng = SplitMix64(seed: 0xC0DE)
        let shapes: [q16_conv_params] = [
            q16_conv_params(C: 3, H: 9, W: 11, F: 5, kh: 3, kw: 3, stride_h: 1, stride_w: 1, pad_top: 1, pad_left: 1,
                            Ho: 9, Wo: 11),
            q16_conv_params(C: 2, H: 13, W: 7, F: 7, kh: 3, kw: 2, stride_h: 2, stride_w: 2, pad_top: 0, pad_left: 0,
                            Ho: 6, Wo: 3),
            q16_conv_params(C: 1, H: 1, W: 97, F: 4, kh: 1, kw: 5, stride_h: 1, stride_w: 1, pad_top: 0, pad_left: 2,
                            Ho: 1, Wo: 97),
        ]
        for var p in shapes {
            XCTAssertEqual(q16_conv_check(&p), Q16_OK)
            let inW = Int(p.C * p.H * p.W), outW = Int(p.F * p.Ho * p.Wo), wW = Int(p.F * p.C * p.kh * p.kw)
            for batch in [1, 3, 7, 32] {
                for spread in [Spread.unit, .full] {
                    let X = values(batch * inW, spread, &rng), Wt = values(wW, spread, &rng)
                    let bias = values(Int(p.F), spread, &rng), dY = values(batch * outW, spread, &rng)
                    let fPer = (q16_conv_forward_buffer_size(&p) + 7) / 8 * 8
                    let dPer = (q16_conv_backward_data_buffer_size(&p) + 7) / 8 * 8
                    var yWant = [Int32](repeating: 0, count: batch * outW), dxWant = [Int32](repeating: 0, count: batch * inW)
                    var fs = [Int32](repeating: 0, count: fPer / 4), ds = [Int32](repeating: 0, count: dPer / 4)
                    var satF: UInt64 = 0, satD: UInt64 = 0
                    XCTAssertEqual(q16_conv_forward(&yWant, &fs, X, Wt, bias, Int32(batch), &p, &satF), Q16_OK)
                    XCTAssertEqual(q16_conv_backward_data(&dxWant, &ds, dY, Wt, Int32(batch), &p, &satD), Q16_OK)
                    for team in teams {
                        let workers = Int(q16_team_count(team?.team))
                        for withScratch in [true, false] {
                            var wf = [Int32](repeating: 0, count: workers * fPer / 4)
                            var wd = [Int32](repeating: 0, count: workers * dPer / 4)
                            var y = [Int32](repeating: 7, count: batch * outW), dx = [Int32](repeating: 7, count: batch * inW)
                            var sf: UInt64 = 0, sd: UInt64 = 0
                            let st = wf.withUnsafeMutableBufferPointer { fp in
                                wd.withUnsafeMutableBufferPointer { dp in
                                    (q16_par_conv_forward(team?.team, &y, withScratch ? fp.baseAddress : nil, fPer, X, Wt,
                                                          bias, Int32(batch), &p, &sf),
                                     q16_par_conv_backward_data(team?.team, &dx, withScratch ? dp.baseAddress : nil, dPer,
                                                                dY, Wt, Int32(batch), &p, &sd))
                                }
                            }
                            let what = "C\(p.C) H\(p.H) W\(p.W) F\(p.F) batch \(batch) \(spread) workers \(workers)"
                            XCTAssertEqual(st.0, Q16_OK)
                            XCTAssertEqual(st.1, Q16_OK)
                            XCTAssertEqual(y, yWant, "conv_forward " + what)
                            XCTAssertEqual(dx, dxWant, "conv_backward_data " + what)
                            XCTAssertEqual(sf, satF, "conv_forward saturations " + what)
                            XCTAssertEqual(sd, satD, "conv_backward_data saturations " + what)
                        }
                    }
                }
            }
        }
    }
}
