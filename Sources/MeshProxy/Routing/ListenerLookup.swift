/// A connection's view of its listener's routes, refreshed only when the
/// loop installed a new routing table (a reload), so a request costs no
/// dictionary lookup.
struct ListenerLookup {
    let name: String
    private var cached: CompiledListener?
    private var generation = -1

    init(name: String) {
        self.name = name
    }

    mutating func current(in worker: LoopWorker) -> CompiledListener? {
        let routing = worker.routing
        if routing.generation != generation {
            generation = routing.generation
            cached = routing.listeners[name]
        }
        return cached
    }
}
