// Starts mongo-java-server's in-memory backend on 127.0.0.1:<port> and blocks until the process is stopped.
// mongo-java-server has no command-line entry point of its own; Java 17 runs this single file directly:
//
//     java -cp '<lib>/*' deploy/local/mongo-java-server/Main.java <port>
//
// pymongo 4.20 refuses servers that report a wire version below 9 (MongoDB 4.4). mongo-java-server 1.47.0's
// ServerVersion.MONGO_5_0 (its newest) says "5.0.0" but reports wire version 8, so the launcher announces
// 5.0.0 with wire version 13, the number MongoDB 5.0 reports; nothing else in the backend reads it.

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.List;
import java.util.concurrent.CountDownLatch;

public class Main {
    static final class Mongo50 implements MongoVersion {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(5, 0, 0);
        }

        @Override
        public int getWireVersion() {
            return 13;
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 1) {
            System.err.println("usage: java -cp '<lib>/*' Main.java <port>");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        MongoServer server = new MongoServer(new MemoryBackend().version(new Mongo50()));
        server.bind("127.0.0.1", port);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            stopped.countDown();
        }));
        System.out.println("mongo-java-server (memory backend) listening on 127.0.0.1:" + port);
        System.out.flush();
        stopped.await();
    }
}
