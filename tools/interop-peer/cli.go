package main

// cli mode: one CLI envelope with a stream_id, as our CLI sends it, from a grpc-go client
// with default settings; every StreamToCli frame on that stream_id is printed as a "reply"
// event. `nodes` ends at the ControllerListNodesV1Reply; `status` reads the
// CliResponseCountV1Notify and ends when every expected node has answered.

import (
	"context"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	pb "currency-nodes/tools/interop-peer/gen/currencypb"
)

func runCli(args []string) error {
	fs := flag.NewFlagSet("cli", flag.ExitOnError)
	controller := fs.String("controller", "127.0.0.1:5160", "controller address")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the replies")
	_ = fs.Parse(args)
	if fs.NArg() < 1 {
		return fmt.Errorf("usage: cli [flags] nodes | status [NODE_UUID...]")
	}
	var cmd proto.Message
	switch fs.Arg(0) {
	case "nodes":
		cmd = &pb.ControllerListNodesV1Req{}
	case "status":
		cmd = &pb.NodeStatusV1Req{}
	default:
		return fmt.Errorf("unknown command %q (nodes, status)", fs.Arg(0))
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*controller, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := pb.NewCliCmdStreamClient(conn).CliCommandStream(ctx, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	streamID := newUUID()
	req := &pb.StreamFromCli{
		StreamId: streamID, CliUuid: newUUID(), NodeUuids: fs.Args()[1:], Command: mustPack(cmd),
	}
	if err := stream.Send(req); err != nil {
		return err
	}
	emit("sent", map[string]any{"stream_id": streamID, "type": string(proto.MessageName(cmd))})

	expected := -1 // replies still awaited from nodes; -1 until the count arrives
	for {
		frame, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("waiting for the reply: %w", err)
		}
		if frame.GetStreamId() != streamID {
			continue
		}
		name, msg, j := decoded(frame.GetResponse())
		emit("reply", map[string]any{"type": name, "node_uuid": frame.NodeUuid, "message": j})
		switch m := msg.(type) {
		case *pb.ControllerListNodesV1Reply, *pb.UnknownCommandV1Notify, *pb.CliErrorV1Notify:
			_ = stream.CloseSend()
			return nil
		case *pb.CliResponseCountV1Notify:
			expected = int(m.GetExpectedResponses())
		default:
			expected--
		}
		if expected == 0 {
			_ = stream.CloseSend()
			return nil
		}
	}
}
