package main

// node mode: a grpc-go client with DEFAULT client settings (no keepalive pings), playing a
// node of the original implementation: announces its pairs, streams a price per started
// pair every --interval while told to (NodeStreamModifyStateV1Req is a full state), answers
// NodeStatusV1Req and NodeShutdownV1Req, and reconnects when the stream ends.
// --no-name omits the name header; --no-from-uuid answers without from_uuid (two quirks a
// foreign node may have).

import (
	"context"
	"flag"
	"math/rand/v2"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "currency-nodes/tools/interop-peer/gen/currencypb"
)

type goNode struct {
	uuid, name, controller string
	pairs                  []string
	noFromUUID             bool
	interval               time.Duration

	mu          sync.Mutex
	streaming   map[string]float64 // started pair -> last price
	connectedAt time.Time
}

func runNode(args []string) error {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	controller := fs.String("controller", "127.0.0.1:5160", "controller address")
	uuid := fs.String("uuid", "", "node UUID (default: a random one)")
	name := fs.String("name", "go-node", "node name, sent as x-currency-node-name")
	noName := fs.Bool("no-name", false, "send no name header")
	pairs := fs.String("pairs", "EUR_USD", "comma-separated pairs this node can stream")
	noFromUUID := fs.Bool("no-from-uuid", false, "answer commands without from_uuid")
	interval := fs.Duration("interval", 200*time.Millisecond, "price interval per started pair")
	_ = fs.Parse(args)
	n := &goNode{
		uuid: *uuid, name: *name, controller: *controller, noFromUUID: *noFromUUID,
		pairs: strings.Split(*pairs, ","), interval: *interval, streaming: map[string]float64{},
	}
	if n.uuid == "" {
		n.uuid = newUUID()
	}
	if *noName {
		n.name = ""
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Default dial options: no keepalive, grpc-go's own reconnect backoff.
	conn, err := grpc.NewClient(n.controller, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pb.NewNodeCmdStreamClient(conn)
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := n.session(ctx, client, attempt)
		emit("disconnected", map[string]any{"node_uuid": n.uuid, "error": errString(err)})
		if shutdownRequested(err) {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

var errShutdown = &shutdownError{}

type shutdownError struct{}

func (*shutdownError) Error() string { return "shutdown requested" }

func shutdownRequested(err error) bool { return err == errShutdown }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// session is one stream: registration, commands, prices, until the stream ends.
func (n *goNode) session(parent context.Context, client pb.NodeCmdStreamClient, attempt int) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if n.name != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-currency-node-name", n.name)
	}
	stream, err := client.NodeCommandStream(ctx, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	var sendMu sync.Mutex
	send := func(from *string, m *pb.StreamFromNode) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		if !n.noFromUUID {
			m.FromUuid = from
		}
		return stream.Send(m)
	}
	n.mu.Lock()
	n.streaming = map[string]float64{} // stops streaming while disconnected
	n.connectedAt = time.Now()
	n.mu.Unlock()
	hello := &pb.NodeKnownCurrenciesV1Notify{KnownCurrencyPairs: n.pairs}
	if err := send(nil, &pb.StreamFromNode{NodeUuid: n.uuid, Response: mustPack(hello)}); err != nil {
		return err
	}
	emit("connected", map[string]any{"node_uuid": n.uuid, "attempt": attempt})

	go n.streamPrices(ctx, func(u *pb.NodePriceUpdateV1Notify) error {
		return send(nil, &pb.StreamFromNode{NodeUuid: n.uuid, Response: mustPack(u)})
	})
	for {
		frame, err := stream.Recv()
		if err != nil {
			return err
		}
		msgName, msg, j := decoded(frame.GetCommand())
		from := frame.FromUuid
		var reply *pb.StreamFromNode
		switch m := msg.(type) {
		case *pb.NodeStreamModifyStateV1Req:
			started := n.apply(m)
			emit("modify", map[string]any{"node_uuid": n.uuid, "streaming": started, "from_uuid": from})
			reply = &pb.StreamFromNode{NodeUuid: n.uuid, Response: mustPack(&pb.NodeStreamModifyStateV1Reply{})}
		case *pb.NodeStatusV1Req:
			emit("status_req", map[string]any{"node_uuid": n.uuid, "from_uuid": from})
			reply = &pb.StreamFromNode{NodeUuid: n.uuid, Response: mustPack(n.status())}
		case *pb.NodeShutdownV1Req:
			r := &pb.NodeShutdownV1Reply{ShutdownAt: timestamppb.Now()}
			_ = send(from, &pb.StreamFromNode{NodeUuid: n.uuid, Response: mustPack(r)})
			return errShutdown
		case *pb.UnknownCommandV1Notify:
			emit("unknown_reply", map[string]any{"node_uuid": n.uuid, "message": j})
			continue
		default:
			emit("command_unknown", map[string]any{"node_uuid": n.uuid, "type": msgName})
			r := &pb.UnknownCommandV1Notify{Command: frame.GetCommand()}
			reply = &pb.StreamFromNode{NodeUuid: n.uuid, Response: mustPack(r)}
		}
		if err := send(from, reply); err != nil {
			return err
		}
	}
}

// apply takes a full desired state: what it does not start is stopped.
func (n *goNode) apply(m *pb.NodeStreamModifyStateV1Req) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	next := map[string]float64{}
	for _, s := range m.GetStreamStates() {
		if s.GetStreamState() != pb.CurrencyStreamStateV1_StreamStart {
			continue
		}
		price, ok := n.streaming[s.GetCurrencyPair()]
		if !ok {
			price = 1 + rand.Float64()
			if s.LatestPrice != nil && s.GetLatestPrice() > 0 {
				price = s.GetLatestPrice()
			}
		}
		next[s.GetCurrencyPair()] = price
	}
	n.streaming = next
	started := make([]string, 0, len(next))
	for p := range next {
		started = append(started, p)
	}
	sort.Strings(started)
	return started
}

// streamPrices sends one price per started pair every interval until ctx ends.
func (n *goNode) streamPrices(ctx context.Context, send func(*pb.NodePriceUpdateV1Notify) error) {
	t := time.NewTicker(n.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		var updates []*pb.NodePriceUpdateV1Notify
		for p, price := range n.streaming {
			price *= 1 + (rand.Float64()-0.5)/1000
			n.streaming[p] = price
			updates = append(updates, &pb.NodePriceUpdateV1Notify{
				CurrencyPair: p, Price: price, PriceUpdatedAt: timestamppb.Now(),
			})
		}
		n.mu.Unlock()
		for _, u := range updates {
			if send(u) != nil {
				return
			}
		}
	}
}

func (n *goNode) status() *pb.NodeStatusV1Reply {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := &pb.NodeStatusV1Reply{
		AppVersion:                "interop-peer",
		ConnectedControllerServer: n.controller,
		ConnectedAt:               timestamppb.New(n.connectedAt),
		Config: &pb.NodeStatusV1Reply_NodeConfig{
			Uuid: n.uuid, Name: n.name, ControllerServers: []string{n.controller},
		},
	}
	for p, price := range n.streaming {
		r.StreamStates = append(r.StreamStates, &pb.CurrencyStreamStateV1{
			CurrencyPair: p, StreamState: pb.CurrencyStreamStateV1_StreamStart, LatestPrice: &price,
		})
	}
	return r
}
