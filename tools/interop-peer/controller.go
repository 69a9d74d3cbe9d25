package main

// controller mode: a grpc-go server with DEFAULT keepalive enforcement (one client ping
// per 5 minutes allowed, GOAWAY too_many_pings beyond), playing the original Go controller
// as strictly as the seed describes it:
//   - every node that announces pairs is sent one full-state NodeStreamModifyStateV1Req
//     starting all of them (from_uuid: a fresh UUID); prices are counted and reported;
//   - a CLI command naming nodes (node_uuids) is forwarded to each connected one with
//     from_uuid = the CLI's uuid, and a node's reply carrying that from_uuid goes back to the
//     CLI with node_uuid set. No CliResponseCountV1Notify (new in this project): the original
//     never sends one;
//   - a node frame the original does not take is answered with UnknownCommandV1Notify and
//     reported as node_unknown: a reply without (or with a stale) from_uuid, and batched
//     prices (NodePriceUpdatesV1Notify, an addition of ours a node may send only when the
//     controller's response headers accept it; this peer sends no such header);
//   - CLI streams get the controller commands the original answers (nodes, version), and a
//     V1 price watch (an addition of ours, kept so that an idle CLI stream can be held open);
//     anything else is answered with UnknownCommandV1Notify.

import (
	"errors"
	"flag"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	pb "currency-nodes/tools/interop-peer/gen/currencypb"
)

// nodeConn is one node stream; sends come from its own goroutine and from CLI goroutines,
// and none may follow the end of its handler (grpc-go forbids it).
type nodeConn struct {
	mu     sync.Mutex
	stream pb.NodeCmdStream_NodeCommandStreamServer
	closed bool
}

func (n *nodeConn) send(m *pb.StreamToNode) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errStreamEnded
	}
	return n.stream.Send(m)
}

func (n *nodeConn) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
}

var errStreamEnded = errors.New("node stream ended")

// cliRoute is where replies to a forwarded command go: the CLI stream's outbox and stream id.
// Keyed by the CLI's uuid, the from_uuid the original puts on forwarded commands: a CLI's
// later node command on another stream_id takes the route over (as in the original).
type cliRoute struct {
	out      chan *pb.StreamToCli
	done     <-chan struct{}
	streamID string
}

type goController struct {
	pb.UnimplementedNodeCmdStreamServer
	pb.UnimplementedCliCmdStreamServer

	mu          sync.Mutex
	connections int
	prices      int
	nodes       map[string]*nodeConn // registered node UUIDs
	starts      map[string]bool      // from_uuid of every start command sent
	routes      map[string]cliRoute  // from_uuid (a CLI's uuid) -> where its replies go
	watchers    map[chan *pb.StreamToCli]bool
}

func runController(args []string) error {
	fs := flag.NewFlagSet("controller", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	_ = fs.Parse(args)

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// No keepalive options: grpc-go's defaults are what a stock peer enforces.
	server := grpc.NewServer()
	c := &goController{
		nodes:    map[string]*nodeConn{},
		starts:   map[string]bool{},
		routes:   map[string]cliRoute{},
		watchers: map[chan *pb.StreamToCli]bool{},
	}
	pb.RegisterNodeCmdStreamServer(server, c)
	pb.RegisterCliCmdStreamServer(server, c)
	emit("listening", map[string]any{"addr": lis.Addr().String()})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		server.Stop()
	}()
	return server.Serve(lis)
}

func (c *goController) NodeCommandStream(stream pb.NodeCmdStream_NodeCommandStreamServer) error {
	ctx := stream.Context()
	name := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("x-currency-node-name")) > 0 {
		name = md.Get("x-currency-node-name")[0]
	}
	addr := ""
	if p, ok := peer.FromContext(ctx); ok {
		addr = p.Addr.String()
	}
	c.mu.Lock()
	c.connections++
	n := c.connections
	c.mu.Unlock()
	emit("node_connected", map[string]any{"connections": n, "name": name, "peer": addr})

	conn := &nodeConn{stream: stream}
	nodeUUID := ""
	var err error
recv:
	for {
		var frame *pb.StreamFromNode
		frame, err = stream.Recv()
		if err != nil {
			break
		}
		nodeUUID = frame.GetNodeUuid()
		msgName, msg, j := decoded(frame.GetResponse())
		c.mu.Lock()
		route, routed := c.routes[frame.GetFromUuid()]
		isStart := c.starts[frame.GetFromUuid()]
		c.mu.Unlock()
		if routed && frame.FromUuid != nil {
			// A reply to a command a CLI sent through this controller.
			out := &pb.StreamToCli{StreamId: route.streamID, NodeUuid: &nodeUUID, Response: frame.GetResponse()}
			select {
			case route.out <- out: // never blocks this node's stream on a slow or gone CLI
				emit("reply_routed", map[string]any{"node_uuid": nodeUUID, "type": msgName, "from_uuid": frame.GetFromUuid()})
			case <-route.done:
				emit("reply_dropped", map[string]any{"node_uuid": nodeUUID, "type": msgName, "why": "cli gone"})
			default:
				emit("reply_dropped", map[string]any{"node_uuid": nodeUUID, "type": msgName, "why": "cli not reading"})
			}
			continue
		}
		switch m := msg.(type) {
		case *pb.NodeKnownCurrenciesV1Notify:
			c.mu.Lock()
			c.nodes[nodeUUID] = conn
			c.mu.Unlock()
			emit("registered", map[string]any{"node_uuid": nodeUUID, "pairs": m.GetKnownCurrencyPairs()})
			// A full desired state: every announced pair started.
			req := &pb.NodeStreamModifyStateV1Req{}
			for _, p := range m.GetKnownCurrencyPairs() {
				req.StreamStates = append(req.StreamStates, &pb.CurrencyStreamStateV1{
					CurrencyPair: p, StreamState: pb.CurrencyStreamStateV1_StreamStart,
				})
			}
			id := newUUID()
			c.mu.Lock()
			c.starts[id] = true
			c.mu.Unlock()
			if err = conn.send(&pb.StreamToNode{FromUuid: &id, Command: mustPack(req)}); err != nil {
				break recv
			}
			emit("start_sent", map[string]any{"node_uuid": nodeUUID, "from_uuid": id, "pairs": m.GetKnownCurrencyPairs()})
			continue
		case *pb.NodePriceUpdateV1Notify:
			c.price(nodeUUID, m)
			continue
		case *pb.NodeStreamModifyStateV1Reply:
			if isStart {
				c.mu.Lock()
				delete(c.starts, frame.GetFromUuid())
				c.mu.Unlock()
				emit("modify_reply", map[string]any{"node_uuid": nodeUUID, "from_uuid": frame.FromUuid})
				continue
			}
		}
		if frame.GetResponse() == nil {
			continue
		}
		// What the original does not take: a reply it cannot route, a message it does not know.
		emit("node_unknown", map[string]any{"node_uuid": nodeUUID, "type": msgName, "from_uuid": frame.FromUuid, "message": j})
		unknown := &pb.UnknownCommandV1Notify{Command: frame.GetResponse()}
		if err = conn.send(&pb.StreamToNode{Command: mustPack(unknown)}); err != nil {
			break recv
		}
	}
	conn.close()
	c.mu.Lock()
	if c.nodes[nodeUUID] == conn {
		delete(c.nodes, nodeUUID)
	}
	c.mu.Unlock()
	emit("node_disconnected", map[string]any{"node_uuid": nodeUUID, "error": err.Error()})
	return nil
}

func (c *goController) price(nodeUUID string, u *pb.NodePriceUpdateV1Notify) {
	c.mu.Lock()
	c.prices++
	n := c.prices
	out := &pb.StreamToCli{NodeUuid: &nodeUUID, Response: mustPack(u)}
	for w := range c.watchers {
		select {
		case w <- out:
		default: // a slow watcher misses updates rather than stalling nodes
		}
	}
	c.mu.Unlock()
	emit("price", map[string]any{"node_uuid": nodeUUID, "pair": u.GetCurrencyPair(), "price": u.GetPrice(), "count": n})
}

func (c *goController) CliCommandStream(stream pb.CliCmdStream_CliCommandStreamServer) error {
	emit("cli_connected", nil)
	var watch chan *pb.StreamToCli
	watchID := ""
	routed := make(chan *pb.StreamToCli, 1024) // node replies to commands this CLI forwarded
	var cliUUIDs []string
	defer func() {
		c.mu.Lock()
		for _, u := range cliUUIDs {
			if c.routes[u].out == routed { // another stream may have taken the route over
				delete(c.routes, u)
			}
		}
		c.mu.Unlock()
	}()
	watchPairs := map[string]bool{} // empty: every pair
	defer func() {
		if watch != nil {
			c.mu.Lock()
			delete(c.watchers, watch)
			c.mu.Unlock()
		}
	}()
	recv := make(chan *pb.StreamFromCli)
	recvErr := make(chan error, 1)
	go func() {
		for {
			f, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			recv <- f
		}
	}()
	for {
		select {
		case err := <-recvErr:
			emit("cli_disconnected", map[string]any{"error": err.Error()})
			return nil
		case out := <-routed:
			if err := stream.Send(out); err != nil {
				return err
			}
		case out := <-watch:
			u := &pb.NodePriceUpdateV1Notify{}
			if out.GetResponse().UnmarshalTo(u) != nil || (len(watchPairs) > 0 && !watchPairs[u.GetCurrencyPair()]) {
				continue
			}
			fwd := &pb.StreamToCli{StreamId: watchID, NodeUuid: out.NodeUuid, Response: out.Response}
			if err := stream.Send(fwd); err != nil {
				return err
			}
		case f := <-recv:
			msgName, msg, _ := decoded(f.GetCommand())
			emit("cli_command", map[string]any{"stream_id": f.GetStreamId(), "type": msgName, "node_uuids": f.GetNodeUuids()})
			if len(f.GetNodeUuids()) > 0 {
				// For nodes: forwarded as it is, replies come back as they arrive; no count.
				from := f.GetCliUuid()
				c.mu.Lock()
				c.routes[from] = cliRoute{out: routed, done: stream.Context().Done(), streamID: f.GetStreamId()}
				targets := map[string]*nodeConn{}
				for _, u := range f.GetNodeUuids() {
					if n := c.nodes[u]; n != nil {
						targets[u] = n
					}
				}
				c.mu.Unlock()
				cliUUIDs = append(cliUUIDs, from)
				for u, n := range targets {
					if n.send(&pb.StreamToNode{FromUuid: &from, Command: f.GetCommand()}) == nil {
						emit("cli_forwarded", map[string]any{"node_uuid": u, "type": msgName, "from_uuid": from})
					}
				}
				continue
			}
			var reply *pb.StreamToCli
			switch m := msg.(type) {
			case *pb.ControllerListNodesV1Req:
				r := &pb.ControllerListNodesV1Reply{}
				c.mu.Lock()
				for u := range c.nodes {
					r.NodeUuids = append(r.NodeUuids, u)
				}
				c.mu.Unlock()
				reply = &pb.StreamToCli{StreamId: f.GetStreamId(), Response: mustPack(r)}
			case *pb.ControllerAppVersionV1Req:
				r := &pb.ControllerAppVersionV1Reply{ControllerAppVersion: "interop-peer"}
				reply = &pb.StreamToCli{StreamId: f.GetStreamId(), Response: mustPack(r)}
			case *pb.ControllerWatchPricesV1Req:
				if watch == nil {
					watch = make(chan *pb.StreamToCli, 1024)
					c.mu.Lock()
					c.watchers[watch] = true
					c.mu.Unlock()
				}
				watchID = f.GetStreamId()
				for _, p := range m.GetCurrencyPairs() {
					watchPairs[p] = true
				}
				r := &pb.ControllerWatchPricesV1Reply{CurrencyPairs: m.GetCurrencyPairs()}
				reply = &pb.StreamToCli{StreamId: f.GetStreamId(), Response: mustPack(r)}
			default:
				r := &pb.UnknownCommandV1Notify{Command: f.GetCommand()}
				reply = &pb.StreamToCli{StreamId: f.GetStreamId(), Response: mustPack(r)}
			}
			if err := stream.Send(reply); err != nil {
				return err
			}
		}
	}
}
