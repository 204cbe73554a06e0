import Foundation
import PDMMHost

let tool = Tool(out: { print($0) },
                err: { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) })
exit(tool.run(Array(CommandLine.arguments.dropFirst())))
